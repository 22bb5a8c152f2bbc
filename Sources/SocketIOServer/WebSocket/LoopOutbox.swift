import NIOCore
import Synchronization

/// One text frame for a WebSocket.
enum OutboundFrame: Sendable {
    /// An Engine.IO packet, framed by NIO's `WebSocketFrameEncoder` (packets for one socket: acks, pings, replies).
    case packet(ByteBuffer)
    /// A whole frame built once for every recipient (``EncodedEvent/frame``), written below the encoder as it is.
    case framed(ByteBuffer)
}

/// What a session sends its WebSocket.
enum OutboxItem: Sendable {
    /// One frame; `overflowCloses: false` for the CONNECT reply (see ``SocketRegistry/admit(_:reply:)``).
    case send(OutboundFrame, overflowCloses: Bool)
    /// The session closed: with `flush`, after what was sent before (then close 1000); without, at once.
    case close(flush: Bool)
}

/// Where a session carried by a WebSocket sends its packets: its ``EngineWebSocketHandler``, reached on the channel's
/// event loop through that loop's ``LoopOutbox``.
final class WebSocketSink: Sendable {
    let outbox: LoopOutbox
    let handler: NIOLoopBound<EngineWebSocketHandler>

    init(outbox: LoopOutbox, handler: EngineWebSocketHandler) {
        self.outbox = outbox
        self.handler = NIOLoopBound(handler, eventLoop: outbox.loop)
    }

    func post(_ item: OutboxItem) {
        self.outbox.post(self, item)
    }
}

/// One event loop's queue of packets for its WebSockets, from any thread: one lock to post, at most one task on the loop
/// per burst, and one flush per socket per burst (a fan-out to 1,000 sockets on two loops is two loop tasks, not 1,000
/// task wake-ups).
///
/// Every producer posts here, even on the loop itself, so one producer's packets to a socket keep their order.
final class LoopOutbox: Sendable {
    let loop: any EventLoop
    private struct State: ~Copyable {
        var items: [(WebSocketSink, OutboxItem)] = []
        var scheduled = false
    }
    private let state = Mutex(State())

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func post(_ sink: WebSocketSink, _ item: OutboxItem) {
        let schedule = self.state.withLock { state in
            state.items.append((sink, item))
            defer { state.scheduled = true }
            return !state.scheduled
        }
        if schedule { self.loop.execute { self.drain() } }
    }

    func post(contentsOf items: [(WebSocketSink, OutboxItem)]) {
        guard !items.isEmpty else { return }
        let schedule = self.state.withLock { state in
            state.items.append(contentsOf: items)
            defer { state.scheduled = true }
            return !state.scheduled
        }
        if schedule { self.loop.execute { self.drain() } }
    }

    /// On the loop: hands every posted item to its handler in order, then flushes each handler written to once.
    private func drain() {
        var items: [(WebSocketSink, OutboxItem)] = []
        self.state.withLock { state in
            swap(&items, &state.items)
            state.scheduled = false
        }
        var written: [EngineWebSocketHandler] = []
        for (sink, item) in items {
            let handler = sink.handler.value
            if handler.send(item) { written.append(handler) }
        }
        for handler in written {
            handler.flushWrites()
        }
    }
}

/// The outboxes of the server's event loops, made on first use.
final class LoopOutboxes: Sendable {
    private let outboxes = Mutex<[ObjectIdentifier: LoopOutbox]>([:])

    func outbox(for loop: any EventLoop) -> LoopOutbox {
        self.outboxes.withLock { outboxes in
            let key = ObjectIdentifier(loop)
            if let outbox = outboxes[key] { return outbox }
            let outbox = LoopOutbox(loop: loop)
            outboxes[key] = outbox
            return outbox
        }
    }
}
