import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// How long a client may take to send a request, beside Hummingbird's idle timeout (which starts only once a first request
/// head has arrived on the WebSocket-upgradable listener, and which every body byte resets). As Node's `headersTimeout` and
/// `requestTimeout`: a connection that drips its headers, or its body, is answered 408 and closed.
struct RequestTimeouts: Sendable {
    /// From the connection's start until its first request head is complete (later heads: the idle timeout).
    var header: TimeAmount
    /// From a request's head until its body is read to the end.
    var request: TimeAmount
}

/// The listener's child channel with a ``RequestDeadlineHandler`` in front of `base`'s pipeline.
struct RequestDeadlineChannel<Base: ServerChildChannel>: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let base: Base.Value
        let expiry: DeadlineExpiry
        var channel: any Channel { self.base.channel }
    }

    let base: Base
    let timeouts: RequestTimeouts

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let expiry = DeadlineExpiry()
        do {
            try channel.pipeline.syncOperations.addHandler(RequestDeadlineHandler(timeouts: self.timeouts, expiry: expiry), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return self.base.setup(channel: channel, logger: logger).map { Value(base: $0, expiry: expiry) }
    }

    func handle(value: Value, logger: Logger) async {
        // Closing a connection before its first head fails Hummingbird's wait for the head, which it logs as an error:
        // for a connection closed on purpose (too slow, or shutting down) that is debug information, not an error.
        let handler = logger.handler
        let quiet = Logger(label: logger.label) { _ in QuietAfterExpiry(base: handler, expiry: value.expiry) }
        await self.base.handle(value: value.base, logger: quiet)
    }
}

/// Set once ``RequestDeadlineHandler`` closes its connection on purpose.
final class DeadlineExpiry: Sendable {
    private let closed = Atomic<Bool>(false)

    var isClosed: Bool { self.closed.load(ordering: .relaxed) }

    func close() { self.closed.store(true, ordering: .relaxed) }
}

/// `base`, with every message about a connection closed on purpose logged at debug level.
struct QuietAfterExpiry: LogHandler {
    var base: any LogHandler
    let expiry: DeadlineExpiry

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.base[metadataKey: key] }
        set { self.base[metadataKey: key] = newValue }
    }

    var metadata: Logger.Metadata {
        get { self.base.metadata }
        set { self.base.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { self.base.logLevel }
        set { self.base.logLevel = newValue }
    }

    func log(
        level: Logger.Level,
        message: Logger.Message,
        metadata: Logger.Metadata?,
        source: String,
        file: String,
        function: String,
        line: UInt
    ) {
        let level = self.expiry.isClosed ? min(level, .debug) : level
        guard level >= self.base.logLevel else { return }
        self.base.log(level: level, message: message, metadata: metadata, source: source, file: file, function: function, line: line)
    }
}

/// Closes a connection whose request does not arrive in time. It sits before the HTTP decoder, so it also sees a
/// connection whose first request head never completes (nothing after the decoder exists until then). A
/// ``RequestProgressHandler`` after the decoder tells it where each request is; a connection upgraded to a WebSocket
/// (its first write is the 101 answer) is no longer its concern, nor a connection whose request was read (Hummingbird's
/// idle timeout takes over).
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private enum Phase {
        /// No request yet on this connection: waiting for the first head.
        case awaitingFirstHead
        /// A head arrived: waiting for the end of its body.
        case readingRequest
        /// The request was read (the next head's wait is Hummingbird's idle timeout), or the connection was upgraded.
        case done
    }

    private let timeouts: RequestTimeouts
    private let expiry: DeadlineExpiry
    private var phase = Phase.awaitingFirstHead
    private var deadline: Scheduled<Void>?
    /// Whether anything was written since the current phase began (then a 408 could interleave with an answer).
    private var wrote = false

    init(timeouts: RequestTimeouts, expiry: DeadlineExpiry) {
        self.timeouts = timeouts
        self.expiry = expiry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.arm(context, in: self.timeouts.header) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if self.deadline == nil, case .awaitingFirstHead = self.phase { self.arm(context, in: self.timeouts.header) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.disarm()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.wrote = true
        // The first request's answer before its head was reported: the WebSocket upgrade (or a refusal of a bad request).
        if case .awaitingFirstHead = self.phase {
            self.phase = .done
            self.disarm()
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Graceful shutdown: a connection without a request in flight goes at once (Hummingbird's handler, which would
        // close it, is not there before the first request).
        if event is ChannelShouldQuiesceEvent, case .awaitingFirstHead = self.phase {
            self.expiry.close()
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A request head arrived (from ``RequestProgressHandler``, on this channel's event loop).
    func requestStarted(_ context: ChannelHandlerContext) {
        self.phase = .readingRequest
        self.wrote = false
        self.arm(context, in: self.timeouts.request)
    }

    /// The request's body was read to its end.
    func requestRead() {
        self.phase = .done
        self.disarm()
    }

    private func arm(_ context: ChannelHandlerContext, in timeout: TimeAmount) {
        self.disarm()
        let loop = context.eventLoop.assumeIsolated()
        self.deadline = loop.scheduleTask(in: timeout) { [context] in
            self.deadline = nil
            self.expire(context)
        }
    }

    private func disarm() {
        self.deadline?.cancel()
        self.deadline = nil
    }

    private func expire(_ context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        self.expiry.close()
        if !self.wrote {
            let answer = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: answer)), promise: nil)
        }
        context.close(promise: nil)
    }
}

/// Tells the connection's ``RequestDeadlineHandler`` where each request is: after the HTTP decoder, it sees request parts.
final class RequestProgressHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart

    private var deadlines: RequestDeadlineHandler?
    private var deadlinesContext: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.deadlinesContext = try? context.pipeline.syncOperations.context(handlerType: RequestDeadlineHandler.self)
        self.deadlines = self.deadlinesContext?.handler as? RequestDeadlineHandler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head:
            if let deadlines = self.deadlines, let deadlinesContext = self.deadlinesContext { deadlines.requestStarted(deadlinesContext) }
        case .body:
            break
        case .end:
            self.deadlines?.requestRead()
        }
        context.fireChannelRead(data)
    }
}
