import Logging
import Metrics
import NIOCore
import SocketIOProtocol
import Synchronization

/// One Engine.IO session: its bounded outbound queue, the transport that drains it, the upgrade, the heartbeat and the close.
///
/// Every transition happens under one lock; continuations are resumed, packets posted and callbacks called after it is
/// released. The queue is the polling transport's (and holds what comes before a WebSocket is attached); once a WebSocket
/// carries the session, packets go straight to its ``WebSocketSink`` and the WebSocket's handler bounds them.
final class EngineSession: Sendable {
    /// Which transport carries the session's packets.
    enum Transport: Sendable, Equatable {
        case polling
        case webSocket
    }

    /// What a long-poll GET answers with.
    enum PollResult: Sendable, Equatable {
        /// The packets to send, joined by the record separator.
        case packets([ByteBuffer])
        /// Another GET is already pending: a protocol error.
        case overlap
        /// The session has moved to WebSocket.
        case notPolling
        /// The session is over.
        case closed
    }

    /// Where the session is in its life.
    enum Phase: Sendable, Equatable {
        /// Packets flow both ways.
        case open
        /// Closed to new packets; what is queued still goes out, until a deadline.
        case draining
        /// Nothing more is sent; the server forgets the session.
        case finished
    }

    /// Callbacks into the Socket.IO layer, dropped at finish so the session and its connection do not keep each other alive.
    struct Hooks: Sendable {
        /// The session stopped accepting packets, with the reason.
        let closed: @Sendable (DisconnectReason) -> Void
        /// The session delivered its last packet (or gave up); the server forgets it.
        let finished: @Sendable () -> Void
    }

    /// What a WebSocket takes over when it starts carrying the session.
    enum Handover: Sendable {
        /// The packets queued so far, to write first; `draining` when the session closed meanwhile (close after them).
        case attached(packets: [ByteBuffer], draining: Bool)
        /// The session is over.
        case finished
    }

    /// A suspended consumer, with an id so a cancelled consumer removes only itself.
    struct Waiter<Value: Sendable>: Sendable {
        let id: UInt64
        let continuation: CheckedContinuation<Value, Never>
    }

    struct State: Sendable {
        var phase: Phase = .open
        var transport: Transport
        /// A WebSocket answered the probe: long-poll GETs are answered with a noop at once.
        var upgrading = false
        /// A WebSocket has claimed the upgrade (before it waits for the queue); another one on the same sid is refused.
        var upgradeClaimed = false
        var queue: [ByteBuffer] = []
        var pollWaiter: Waiter<PollResult>?
        /// The WebSocket carrying the session, once attached; nil'd at finish (it refers back to the session).
        var sink: WebSocketSink?
        /// The one deadline the session waits for on the server's ``SessionClock``; an earlier one is stale.
        var deadline: (kind: Deadline, token: UInt64)?
        /// When the first ping is due, for a session whose connect timeout comes before it.
        var firstPing: ContinuousClock.Instant?
        /// Since when no socket has been connected; nil while one is.
        var unattachedSince: ContinuousClock.Instant? = .now
        var hooks: Hooks?
        var lastID: UInt64 = 0

        mutating func nextID() -> UInt64 {
            self.lastID += 1
            return self.lastID
        }
    }

    /// The most packets one polling response carries: python-engineio clients refuse a payload of more than 16
    /// ("Too many packets in payload") and drop the session; the rest simply goes out with the next GET.
    static let pollingBatchLimit = 16

    /// What a session's deadline on the ``SessionClock`` is for.
    enum Deadline: Sendable, Equatable {
        /// A new session's connect timeout, when it comes before the first ping.
        case connect
        /// The next ping.
        case ping
        /// The pong for the last ping is late.
        case pong
        /// A draining session's last packets had their time.
        case drain
    }

    /// The Engine.IO session id.
    let sid: String
    /// What the session's first request carried.
    let handshake: SocketIOHandshake
    let configuration: SocketIOConfiguration
    let logger: Logger
    let state: Mutex<State>
    /// The server's clock, which runs the session's heartbeat and deadlines.
    let clock: SessionClock

    init(
        sid: String,
        transport: Transport,
        handshake: SocketIOHandshake,
        configuration: SocketIOConfiguration,
        clock: SessionClock,
        logger: Logger
    ) {
        self.sid = sid
        self.clock = clock
        self.handshake = handshake
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "sio.sid"] = .string(sid)
        self.logger = logger
        self.state = Mutex(State(transport: transport))
    }

    /// The `open` packet's payload; a session that opened on WebSocket offers no upgrade.
    func openPacket(transport: Transport) -> ByteBuffer {
        let handshake = EngineHandshake(
            sid: self.sid,
            upgrades: transport == .polling ? ["websocket"] : [],
            pingInterval: self.configuration.milliseconds(self.configuration.pingInterval),
            pingTimeout: self.configuration.milliseconds(self.configuration.pingTimeout),
            maxPayload: self.configuration.maxPayload
        )
        return EngineText.packet(.open(handshake))
    }

    /// The transport that carries the session now.
    var transport: Transport { self.state.withLock { $0.transport } }

    /// Whether the session still takes packets.
    var isOpen: Bool { self.state.withLock { $0.phase == .open } }

    /// The number of packets waiting to be sent.
    var queuedCount: Int { self.state.withLock { $0.queue.count } }

    // MARK: Producing

    /// Queues one Engine.IO packet, or posts it to the WebSocket carrying the session; never blocks. On overflow the
    /// session is closed instead: the client catches up over HTTP. With `overflowCloses: false` the packet is queued past
    /// the limit instead, for a caller that holds the registry's lock (closing calls back into the registry).
    func enqueue(_ packet: ByteBuffer, overflowCloses: Bool = true) {
        self.route(packet, overflowCloses: overflowCloses)?.post(.send(.packet(packet), overflowCloses: overflowCloses))
    }

    /// Queues an event, as ``enqueue(_:overflowCloses:)``: a WebSocket writes the event's shared frame.
    func enqueue(_ event: EncodedEvent) {
        self.route(event.packet)?.post(.send(.framed(event.frame), overflowCloses: true))
    }

    /// As ``enqueue(_:overflowCloses:)``, except that a packet for a WebSocket is not posted but its sink returned, for a
    /// caller that posts many at once (``SocketIOServer/emit(_:toUsers:)``).
    func route(_ packet: ByteBuffer, overflowCloses: Bool = true) -> WebSocketSink? {
        enum Outcome {
            case queued
            case dropped
            case overflow
            case post(WebSocketSink)
            case wakePoll(CheckedContinuation<PollResult, Never>, [ByteBuffer])
        }
        let limit = self.configuration.outboundQueueLimit
        let outcome = self.state.withLock { state -> Outcome in
            guard state.phase == .open else { return .dropped }
            if let sink = state.sink { return .post(sink) }
            guard state.queue.count < limit || !overflowCloses else { return .overflow }
            state.queue.append(packet)
            guard state.transport == .polling, let waiter = state.pollWaiter else { return .queued }
            state.pollWaiter = nil
            return .wakePoll(waiter.continuation, state.takePollingBatch())
        }
        switch outcome {
        case .queued, .dropped:
            return nil
        case .post(let sink):
            return sink
        case .overflow:
            self.overflowed()
            return nil
        case .wakePoll(let continuation, let batch):
            continuation.resume(returning: .packets(batch))
            return nil
        }
    }

    /// The client does not keep up (its queue, or its WebSocket's backlog, is full): the session closes.
    func overflowed() {
        self.logger.warning(
            "outbound queue overflow: disconnecting a socket that does not keep up",
            metadata: ["sio.limit": "\(self.configuration.outboundQueueLimit)"]
        )
        SocketIOMetrics.queueOverflows.increment()
        self.close(.transportError)
    }

    /// A WebSocket that opened the session starts carrying it: it takes what was queued so far.
    func attach(_ sink: WebSocketSink) -> Handover {
        self.state.withLock { state in
            guard state.phase != .finished else { return .finished }
            state.sink = sink
            return .attached(packets: state.takeQueue(), draining: state.phase == .draining)
        }
    }

    // MARK: Consuming

    /// Serves a long-poll GET: everything queued at once, or waits for the next packet.
    func poll() async -> PollResult {
        let id = self.state.withLock { $0.nextID() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<PollResult, Never>) in
                var finished: Finished?
                let immediate = self.state.withLock { state -> PollResult? in
                    guard state.phase != .finished else { return .closed }
                    guard state.transport == .polling else { return .notPolling }
                    guard state.pollWaiter == nil else { return .overlap }
                    if !state.queue.isEmpty {
                        let batch = state.takePollingBatch()
                        // A draining polling session ends with the batch that carries the close packet.
                        if state.phase == .draining && state.queue.isEmpty { finished = state.finish() }
                        return .packets(batch)
                    }
                    // During an upgrade the client waits for this GET to end before it sends `5`.
                    if state.upgrading || Task.isCancelled { return .packets([EngineText.noop]) }
                    state.pollWaiter = Waiter(id: id, continuation: continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
                finished?.run()
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> Waiter<PollResult>? in
                guard state.pollWaiter?.id == id else { return nil }
                defer { state.pollWaiter = nil }
                return state.pollWaiter
            }
            waiter?.continuation.resume(returning: .packets([EngineText.noop]))
        }
    }
}

extension EngineSession.State {
    /// Empties the queue, returning what it held.
    mutating func takeQueue() -> [ByteBuffer] {
        var batch: [ByteBuffer] = []
        swap(&batch, &self.queue)
        return batch
    }

    /// Takes at most `EngineSession.pollingBatchLimit` packets from the front of the queue, for one polling response.
    mutating func takePollingBatch() -> [ByteBuffer] {
        guard self.queue.count > EngineSession.pollingBatchLimit else { return self.takeQueue() }
        let batch = Array(self.queue.prefix(EngineSession.pollingBatchLimit))
        self.queue.removeFirst(EngineSession.pollingBatchLimit)
        return batch
    }

    /// Ends the session: drops the queue and hands back everything to wake or stop, to run after the lock is released.
    mutating func finish() -> EngineSession.Finished {
        self.phase = .finished
        self.queue = []
        var finished = EngineSession.Finished()
        finished.pollWaiter = self.pollWaiter?.continuation
        finished.sink = self.sink
        finished.hooks = self.hooks
        self.pollWaiter = nil
        self.sink = nil
        self.deadline = nil
        self.hooks = nil
        return finished
    }
}

extension EngineSession {
    /// What finishing a session wakes and stops, run outside the lock.
    struct Finished {
        var pollWaiter: CheckedContinuation<PollResult, Never>?
        /// The WebSocket is told to close at once (dropping what it has not written).
        var sink: WebSocketSink?
        var hooks: Hooks?

        func run() {
            self.pollWaiter?.resume(returning: .closed)
            self.sink?.post(.close(flush: false))
            self.hooks?.finished()
        }
    }
}
