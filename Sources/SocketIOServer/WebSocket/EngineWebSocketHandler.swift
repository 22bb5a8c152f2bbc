import Logging
import NIOCore
import NIOWebSocket
import SocketIOProtocol
import Synchronization

/// One Engine.IO WebSocket after the 101: the last handler of its channel's pipeline, all its state confined to the
/// channel's event loop. No task exists for the socket except while it has inbound packets being handled.
///
/// - Outbound: the session posts packets to the loop's ``LoopOutbox``; each is written as one text frame while the channel
///   is writable, else kept in a backlog of at most `outboundQueueLimit` packets (one more closes the session as a queue
///   overflow does); the outbox flushes once per burst.
/// - Inbound: frames are assembled and checked here (fragments up to `maxPayload`, UTF-8); packets go to a short-lived
///   task that hands them to the connection in order; a pong, noop or close with nothing ahead of it is handled inline.
/// - Close: the close codes of RFC 6455 (1000 normal, 1002 protocol error, 1007 invalid UTF-8, 1009 too big); a close the
///   server starts waits `closeTimeout` for the client's answer.
final class EngineWebSocketHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = Never
    typealias OutboundIn = Never
    typealias OutboundOut = WebSocketFrame

    enum Role {
        /// Before `handlerAdded`.
        case new
        /// Upgrading a polling session: waiting for `2probe` (then `5`, once `awaitingUpgrade`).
        case probing(awaitingUpgrade: Bool)
        /// Carrying the session.
        case carrying
        /// A close frame was sent (or the connection failed): nothing more is read or written but the client's close.
        case closing
    }

    /// How long a close the server starts waits for the client's close frame (hummingbird-websocket's default).
    static let closeTimeout = TimeAmount.seconds(15)
    /// Inbound packets waiting for the handler at which the socket stops reading (TCP pushes back).
    static let inboundPauseCount = 64

    private let ticket: SocketIOUpgradeTicket
    private var server: SocketIOServer { self.ticket.server }
    private var context: ChannelHandlerContext?
    private(set) var role = Role.new
    private var connection: SocketIOConnection?
    /// Frames waiting for the channel to become writable; nil when empty.
    private var backlog: CircularBuffer<OutboundFrame>?
    /// `WebSocketFrameEncoder`'s context: a frame built already is written there, below the encoder.
    private var encoderContext: ChannelHandlerContext?
    /// A flushing close waits for the backlog to empty.
    private var closeAfterBacklog = false
    /// Written since the last flush.
    private var needsFlush = false
    /// A fragmented message being assembled, and its opcode.
    private var fragments: ByteBuffer?
    private var fragmentsOpcode = WebSocketOpcode.text
    private var inbound: InboundQueue?
    private var readPending = false
    private var upgradeTimer: Scheduled<Void>?
    private var closeTimer: Scheduled<Void>?

    init(ticket: SocketIOUpgradeTicket) {
        self.ticket = ticket
    }

    // MARK: Opening

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.encoderContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        let server = self.server
        let handshake = self.ticket.handshake
        if let sid = handshake.query["sid"] {
            // The session may have ended since the upgrade request, or another WebSocket may be probing it already.
            guard let connection = server.registry.connection(sid: sid), connection.session.claimUpgrade() else {
                self.startClose(.normalClosure)
                return
            }
            self.connection = connection
            self.role = .probing(awaitingUpgrade: false)
            let loop = NIOLoopBound(self, eventLoop: context.eventLoop)
            self.upgradeTimer = context.eventLoop.scheduleTask(in: TimeAmount(server.configuration.upgradeTimeout)) {
                loop.value.upgradeTimedOut()
            }
            return
        }
        guard case .success(let connection) = server.openSession(transport: .webSocket, handshake: handshake) else {
            // Refused between the check before the upgrade and now: the WebSocket closes without a session.
            self.startClose(.normalClosure)
            return
        }
        self.connection = connection
        self.role = .carrying
        self.write(.packet(connection.session.openPacket(transport: .webSocket)))
        self.attach(connection.session.attach(self.makeSink()))
        self.flushWrites()
    }

    /// Where the session reaches this handler; only the session keeps it (the sink holds the handler).
    private func makeSink() -> WebSocketSink {
        WebSocketSink(outbox: self.server.outboxes.outbox(for: self.context!.eventLoop), handler: self)
    }

    /// Writes what the session queued before this WebSocket carried it; a session that closed meanwhile ends after it.
    private func attach(_ handover: EngineSession.Handover) {
        switch handover {
        case .finished:
            self.startClose(.normalClosure)
        case .attached(let packets, let draining):
            for packet in packets {
                self.write(.packet(packet))
            }
            if draining { self.finishFlushingClose() }
        }
    }

    private func upgradeTimedOut() {
        self.upgradeTimer = nil
        guard case .probing = self.role else { return }
        self.connection?.session.logger.debug("upgrade abandoned: no 5 within the upgrade timeout")
        self.abandonUpgrade()
    }

    /// The probe failed: polling goes on, this WebSocket closes.
    private func abandonUpgrade(_ code: WebSocketErrorCode = .normalClosure) {
        self.connection?.session.abortUpgrade()
        self.startClose(code)
    }

    // MARK: Outbound

    /// One item from the outbox; true when it wrote to the channel (the outbox then flushes once).
    func send(_ item: OutboxItem) -> Bool {
        guard case .carrying = self.role, let context = self.context else { return false }
        switch item {
        case .send(let frame, let overflowCloses):
            guard !self.closeAfterBacklog else { return false }
            if self.backlog == nil && context.channel.isWritable {
                self.write(frame)
                return true
            }
            let limit = self.server.configuration.outboundQueueLimit
            if overflowCloses, let backlog = self.backlog, backlog.count >= limit {
                self.overflowed()
                return false
            }
            self.backlog = self.backlog ?? CircularBuffer(initialCapacity: 16)
            self.backlog!.append(frame)
            return false
        case .close(let flush):
            if flush {
                self.closeAfterBacklog = true
                if self.backlog == nil { self.finishFlushingClose() }
            } else {
                self.startClose(.normalClosure)
            }
            return false
        }
    }

    /// The socket does not read: the session closes as on a queue overflow, and the connection at once.
    private func overflowed() {
        self.backlog = nil
        self.role = .closing
        self.connection?.session.overflowed()
        self.context?.close(promise: nil)
    }

    func flushWrites() {
        guard self.needsFlush, let context = self.context else { return }
        self.needsFlush = false
        context.flush()
    }

    /// Writes one text frame: a packet through the encoder, a frame built already below it.
    private func write(_ frame: OutboundFrame) {
        guard let context = self.context else { return }
        switch frame {
        case .packet(let packet):
            context.write(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: packet)), promise: nil)
        case .framed(let bytes):
            if let encoder = self.encoderContext {
                encoder.write(NIOAny(bytes), promise: nil)
            } else {
                // Without the encoder (never after NIO's upgrade): the packet, framed by whoever is there.
                let headerLength = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self).map { $0 == 127 ? 10 : $0 == 126 ? 4 : 2 } ?? 2
                let packet = bytes.getSlice(at: bytes.readerIndex + headerLength, length: bytes.readableBytes - headerLength)!
                context.write(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: packet)), promise: nil)
            }
        }
        self.needsFlush = true
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.fireChannelWritabilityChanged()
        guard case .carrying = self.role, var backlog = self.backlog else { return }
        self.backlog = nil
        while context.channel.isWritable, let frame = backlog.popFirst() {
            self.write(frame)
        }
        if !backlog.isEmpty {
            self.backlog = backlog
        } else if self.closeAfterBacklog {
            self.finishFlushingClose()
        }
        self.flushWrites()
    }

    /// A flushing close once everything before it is written: close 1000, and the session is over.
    private func finishFlushingClose() {
        self.startClose(.normalClosure)
        self.connection?.session.finishNow()
    }

    /// Sends a close frame (unless one was sent), stops reading data, and closes the connection when the client answers,
    /// its input ends, or `closeTimeout` passes.
    private func startClose(_ code: WebSocketErrorCode) {
        if case .closing = self.role { return }
        self.role = .closing
        self.upgradeTimer?.cancel()
        self.upgradeTimer = nil
        self.backlog = nil
        self.fragments = nil
        guard let context = self.context else { return }
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        context.write(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
        self.needsFlush = false
        context.flush()
        let loop = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.closeTimer = context.eventLoop.scheduleTask(in: Self.closeTimeout) {
            loop.value.context?.close(promise: nil)
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch self.role {
        case .new:
            return
        case .closing:
            // The client's answer to our close; anything else is ignored.
            if frame.opcode == .connectionClose { context.close(promise: nil) }
            return
        case .probing, .carrying:
            break
        }
        // No extension is negotiated, so a reserved bit is an error.
        guard frame.reservedBits.isEmpty else { return self.protocolError(.protocolError) }
        switch frame.opcode {
        case .ping:
            guard frame.fin else { return self.protocolError(.protocolError) }
            context.write(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            self.needsFlush = true
        case .pong:
            guard frame.fin else { return self.protocolError(.protocolError) }
        case .connectionClose:
            self.receivedClose(frame, context: context)
        case .text, .binary:
            guard self.fragments == nil else { return self.protocolError(.protocolError) }
            if frame.fin {
                self.received(message: frame.unmaskedData, opcode: frame.opcode)
            } else {
                self.fragments = frame.unmaskedData
                self.fragmentsOpcode = frame.opcode
            }
        case .continuation:
            guard var fragments = self.fragments else { return self.protocolError(.protocolError) }
            self.fragments = nil
            guard fragments.readableBytes + frame.length <= self.server.configuration.maxPayload else {
                return self.protocolError(.messageTooLarge)
            }
            // Copied into one buffer: slices of the read buffers would pin far more memory than the message.
            var data = frame.unmaskedData
            fragments.writeBuffer(&data)
            if frame.fin {
                self.received(message: fragments, opcode: self.fragmentsOpcode)
            } else {
                self.fragments = fragments
            }
        default:
            self.protocolError(.protocolError)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.flushWrites()
        context.fireChannelReadComplete()
    }

    /// A whole message from the client.
    private func received(message: ByteBuffer, opcode: WebSocketOpcode) {
        guard let connection = self.connection else { return }
        guard opcode == .text else {
            guard case .carrying = self.role else { return self.abandonUpgrade() }
            connection.logger.notice("closing session: binary WebSocket frames are not supported")
            self.endSession(.parseError)
            self.startClose(.normalClosure)
            return
        }
        guard let text = String(validating: message.readableBytesView, as: UTF8.self) else {
            guard case .carrying = self.role else { return self.abandonUpgrade(.dataInconsistentWithMessage) }
            self.endSession(.transportError)
            self.startClose(.dataInconsistentWithMessage)
            return
        }
        switch self.role {
        case .probing(awaitingUpgrade: false):
            guard text == "2probe" else {
                connection.session.logger.debug("upgrade refused: the WebSocket did not start with 2probe")
                return self.abandonUpgrade()
            }
            guard connection.session.beginUpgrade() else { return self.abandonUpgrade() }
            self.role = .probing(awaitingUpgrade: true)
            self.write(.packet(EngineText.packet(.pong(payload: "probe"))))
        case .probing(awaitingUpgrade: true):
            guard text == "5" else {
                connection.session.logger.debug("upgrade abandoned: expected 5 after the probe")
                return self.abandonUpgrade()
            }
            guard let handover = connection.session.completeUpgrade(sink: self.makeSink()) else { return self.abandonUpgrade() }
            self.upgradeTimer?.cancel()
            self.upgradeTimer = nil
            self.role = .carrying
            connection.session.logger.debug("session upgraded to WebSocket")
            self.attach(handover)
        case .carrying:
            let packet: EnginePacket
            do {
                packet = try EnginePacket(text: text)
            } catch {
                connection.logger.notice("closing session: malformed Engine.IO packet", metadata: ["sio.error": "\(error)"])
                self.endSession(.parseError)
                self.startClose(.normalClosure)
                return
            }
            self.received(packet, connection: connection)
        case .new, .closing:
            break
        }
    }

    /// Hands a packet to the connection, in order: inline when it needs no task and nothing is ahead of it, else in the
    /// socket's packet task (started when none runs).
    private func received(_ packet: EnginePacket, connection: SocketIOConnection) {
        let queue = self.inbound ?? InboundQueue()
        self.inbound = queue
        switch queue.append(packet, pauseAt: Self.inboundPauseCount) {
        case .handleInline:
            connection.receiveInline(packet)
        case .queued:
            break
        case .start:
            let resume = NIOLoopBound(self, eventLoop: self.context!.eventLoop)
            let loop = self.context!.eventLoop
            self.server.tasks.add {
                await queue.run(connection) {
                    loop.execute { resume.value.resumeReading() }
                }
            }
        }
    }

    /// The client's close frame: answered (1000, or 1002 for an invalid one) and the connection closed; the session
    /// closes when this WebSocket carries it.
    private func receivedClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var data = frame.unmaskedData
        let size = data.readableBytes
        let code = data.readWebSocketErrorCode()
        var answer = WebSocketErrorCode.normalClosure
        if size > 0 && code == nil {
            answer = .protocolError
        } else if case .unknown(let value) = code, value < 3000 || value > 4999 {
            answer = .protocolError
        } else if data.readableBytes > 0, String(validating: data.readableBytesView, as: UTF8.self) == nil {
            answer = .protocolError
        }
        self.transportEnded(.transportClose)
        var reply = context.channel.allocator.buffer(capacity: 2)
        reply.write(webSocketErrorCode: answer)
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)), promise: nil)
        context.close(promise: nil)
    }

    /// A protocol error of the client's: close with `code`; the session closes (`transport error`) when carried here.
    private func protocolError(_ code: WebSocketErrorCode) {
        switch self.role {
        case .carrying:
            self.endSession(.transportError)
            self.startClose(code)
        case .probing:
            self.abandonUpgrade(code)
        case .new, .closing:
            break
        }
    }

    /// The connection is gone or going: the session closes with `reason` when this WebSocket carries it, an upgrade in
    /// progress is abandoned.
    private func transportEnded(_ reason: DisconnectReason) {
        switch self.role {
        case .carrying:
            self.endSession(reason)
        case .probing:
            self.connection?.session.abortUpgrade()
        case .new, .closing:
            break
        }
        self.role = .closing
        self.upgradeTimer?.cancel()
        self.upgradeTimer = nil
        self.backlog = nil
        self.fragments = nil
    }

    /// The client's input ended the session (a close, an error, a malformed packet): the session closes with `reason`
    /// after the packets the client sent before it, as it would have read them; a draining session has nothing left to
    /// deliver on and finishes rather than waiting for its drain deadline.
    private func endSession(_ reason: DisconnectReason) {
        guard let connection = self.connection else { return }
        if let inbound = self.inbound, inbound.appendEndIfBusy(reason) { return }
        InboundQueue.end(connection, reason: reason)
    }

    // MARK: Reading

    func read(context: ChannelHandlerContext) {
        if let inbound = self.inbound, inbound.isPaused {
            self.readPending = true
            return
        }
        context.read()
    }

    /// The packet task caught up: reading goes on.
    private func resumeReading() {
        guard self.readPending, let context = self.context else { return }
        self.readPending = false
        context.read()
    }

    // MARK: Events

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.transportEnded(.transportError)
        // A WebSocket protocol error (a frame over maxFrameSize: 1009) is answered by NIOWebSocket's error handler,
        // which closes the connection once its close frame is written.
        if !(error is NIOWebSocketError) { context.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.transportEnded(.transportClose)
            context.close(promise: nil)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            switch self.role {
            case .carrying:
                // The session's close comes back as a close item, after what is already posted.
                self.connection?.session.close(.serverShuttingDown)
            case .probing:
                self.abandonUpgrade()
            case .new, .closing:
                break
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.transportEnded(.transportClose)
        self.closeTimer?.cancel()
        self.closeTimer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.transportEnded(.transportClose)
        self.closeTimer?.cancel()
        self.closeTimer = nil
        self.connection = nil
        self.context = nil
        self.encoderContext = nil
    }
}

/// A WebSocket's inbound packets waiting for its connection, handled in order by one short-lived task at a time.
final class InboundQueue: Sendable {
    enum Appended {
        /// Nothing queued and no task runs: a packet that needs no task is handled at once.
        case handleInline
        /// A task runs and will take it.
        case queued
        /// Start the task.
        case start
    }

    enum Item: Sendable {
        case packet(EnginePacket)
        /// The session ends here (``EngineWebSocketHandler/endSession(_:)``).
        case end(DisconnectReason)
    }

    private struct State {
        var packets: [Item] = []
        var running = false
        var paused = false
    }

    private let state = Mutex(State())

    /// Whether the socket should stop reading until the task catches up.
    var isPaused: Bool { self.state.withLock { $0.paused } }

    func append(_ packet: EnginePacket, pauseAt limit: Int) -> Appended {
        self.state.withLock { state in
            if !state.running && state.packets.isEmpty && Self.isInline(packet) { return .handleInline }
            state.packets.append(.packet(packet))
            if state.packets.count >= limit { state.paused = true }
            guard !state.running else { return .queued }
            state.running = true
            return .start
        }
    }

    /// Queues the session's end behind the packets waiting or being handled; false when there are none (end it now).
    func appendEndIfBusy(_ reason: DisconnectReason) -> Bool {
        self.state.withLock { state in
            guard state.running else { return false }
            state.packets.append(.end(reason))
            return true
        }
    }

    /// Closes the session with `reason` and finishes it (nothing is left to deliver it on).
    static func end(_ connection: SocketIOConnection, reason: DisconnectReason) {
        connection.session.close(reason)
        connection.session.finishNow()
    }

    /// Handles packets until none is left; `resume` is called when the socket may read again.
    func run(_ connection: SocketIOConnection, resume: @Sendable () -> Void) async {
        while true {
            let (batch, resumed) = self.state.withLock { state -> ([Item], Bool) in
                var batch: [Item] = []
                swap(&batch, &state.packets)
                if batch.isEmpty { state.running = false }
                defer { state.paused = false }
                return (batch, state.paused)
            }
            if resumed { resume() }
            if batch.isEmpty { return }
            for item in batch {
                switch item {
                case .packet(let packet): await connection.receive(packet)
                case .end(let reason): Self.end(connection, reason: reason)
                }
            }
        }
    }

    /// The packets whose handling is synchronous and short.
    private static func isInline(_ packet: EnginePacket) -> Bool {
        switch packet {
        case .pong, .noop, .close: true
        default: false
        }
    }
}
