import HTTPTypes
public import Hummingbird
public import HummingbirdCore
public import Logging
public import NIOCore
import NIOHTTP1
public import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import Synchronization

/// HTTP/1.1 with the Socket.IO WebSocket upgrade: after the 101 a WebSocket is an ``EngineWebSocketHandler`` in its
/// channel's pipeline, and no task runs for it (Hummingbird's connection task returns at once).
///
/// Adapted from hummingbird-websocket's `HTTP1WebSocketUpgradeChannel`: the upgrade request goes through the router (with
/// its middleware), and the Engine.IO route says whether to upgrade by leaving a ticket in ``SocketIOUpgradeSlot``.
public struct SocketIOHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    /// What the connection became.
    public enum UpgradeResult: Sendable {
        /// A WebSocket, owned by its pipeline from now on.
        case webSocket
        /// Plain HTTP/1.1.
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// An upgrade request that was refused: answered with an empty 400.
        case failedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, Logger)
    }

    public struct Configuration: Sendable {
        /// The HTTP/1.1 settings, as `HTTP1Channel` takes them.
        public var http1: HTTP1Channel.Configuration
        /// The largest WebSocket frame read: the Socket.IO server's `maxPayload` (browsers send each packet as one
        /// frame). NIO's frame decoder refuses a larger frame from its length header (close 1009) before buffering it.
        /// There is no WebSocket auto-ping: Engine.IO's heartbeat is the one clients watch.
        public var maxFrameSize: Int

        public init(http1: HTTP1Channel.Configuration = .init(), maxFrameSize: Int) {
            self.http1 = http1
            self.maxFrameSize = maxFrameSize
        }
    }

    public struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        public let channel: any Channel
    }

    public let responder: HTTPChannelHandler.Responder
    let configuration: Configuration
    /// Runs the upgrade request through the router; true with a ticket left in the slot means upgrade.
    let shouldUpgrade: @Sendable (HTTPRequest, any Channel, Logger) async -> SocketIOUpgradeTicket?

    /// A channel whose upgrade requests are answered by `webSocketResponder` (the application's router).
    public init<WSResponder: HTTPResponder>(
        responder: @escaping HTTPChannelHandler.Responder,
        webSocketResponder: WSResponder,
        configuration: Configuration
    ) where WSResponder.Context: InitializableFromSource<ApplicationRequestContextSource> {
        self.configuration = configuration
        self.responder = Self.upgradeRedirectResponder(responder)
        self.shouldUpgrade = { head, channel, logger in
            let request = Request(head: head, body: .init(buffer: .init()))
            let context = WSResponder.Context(source: .init(channel: channel, logger: logger))
            let slot = SocketIOUpgradeSlot()
            do {
                let response = try await SocketIOUpgradeSlot.$current.withValue(slot) {
                    try await webSocketResponder.respond(to: request, context: context)
                }
                guard response.status == .ok else { return nil }
                return slot.take()
            } catch {
                return nil
            }
        }
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let upgradeAttempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let ticket = Mutex<SocketIOUpgradeTicket?>(nil)
            var logger = logger
            logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let shouldUpgrade = self.shouldUpgrade
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: self.configuration.maxFrameSize,
                enableAutomaticErrorHandling: true,
                shouldUpgrade: { channel, head in
                    upgradeAttempted.value = true
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        guard let request = try? HTTPRequest(head, secure: false, splitCookie: false),
                            let granted = await shouldUpgrade(request, channel, logger)
                        else { return nil }
                        ticket.withLock { $0 = granted }
                        return HTTPHeaders()
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let granted = ticket.withLock({ $0.take() }) else { throw NIOWebSocketUpgradeError.unsupportedWebSocketTarget }
                        try channel.pipeline.syncOperations.addHandler(EngineWebSocketHandler(ticket: granted))
                        return UpgradeResult.webSocket
                    }
                }
            )
            let serverUpgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandlers(self.configuration.http1.additionalChannelHandlers())
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: self.configuration.http1.idleTimeout.map { .init($0) }, logger: logger)
                        )
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        return upgradeAttempted.value ? UpgradeResult.failedUpgrade(asyncChannel, logger) : UpgradeResult.notUpgraded(asyncChannel)
                    }
                }
            )
            var upgradeConfiguration = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: serverUpgradeConfiguration)
            upgradeConfiguration.enablePipelining = false
            upgradeConfiguration.enableErrorHandling = false
            upgradeConfiguration.enableResponseHeaderValidation = false
            upgradeConfiguration.decoderConfiguration.maxHeaderFieldSize = self.configuration.http1.httpDecoder.maxHeaderFieldSize
            upgradeConfiguration.decoderConfiguration.maxHeaderListSize = self.configuration.http1.httpDecoder.maxHeaderListSize
            upgradeConfiguration.decoderConfiguration.maxHeaderFieldCount = self.configuration.http1.httpDecoder.maxHeaderFieldCount
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: upgradeConfiguration)
            return Value(upgradeResult: result, channel: channel)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .webSocket:
                // The pipeline owns the connection now; this task ends.
                break
            case .notUpgraded(let http1):
                await self.handleHTTP(asyncChannel: http1, logger: logger)
            case .failedUpgrade(let http1, let logger):
                logger.debug("WebSocket upgrade refused")
                await Self.writeFailedUpgrade(http1, logger: logger)
            }
        } catch let error as ChannelError where error == .inputClosed {
            logger.trace("Upgrade failed as input was closed")
        } catch {
            logger.error("Error handling upgrade result", metadata: ["error.type": .string("\(error)")])
        }
    }

    /// The empty 400 that ends a refused upgrade (as hummingbird-websocket answers it).
    private static func writeFailedUpgrade(_ asyncChannel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, logger: Logger) async {
        do {
            try await asyncChannel.executeThenClose { _, outbound in
                let head = HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])
                try await outbound.write(contentsOf: [.head(head), .end(nil)])
            }
        } catch {
            logger.trace("Failed to write to Channel. Error: \(error)")
        }
    }

    /// NIO upgrades only a connection's first request: an `Upgrade: websocket` request on a kept-alive connection is
    /// redirected to the same URI with the connection closed, so the client retries on a new one (as hummingbird-websocket).
    static func upgradeRedirectResponder(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        struct RedirectCloseError: Error {}
        return { (request: Request, responseWriter: consuming ResponseWriter, channel: any Channel) in
            guard request.headers[.upgrade] == "websocket" else {
                try await responder(request, responseWriter, channel)
                return
            }
            var path = request.uri.path
            if let query = request.uri.query { path += "?\(query)" }
            let response = HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: path])
            try await responseWriter.writeResponse(response)
            throw RedirectCloseError()
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with the Socket.IO WebSocket upgrade, answered by `webSocketRouter`.
    public static func http1SocketIO<Context: InitializableFromSource<ApplicationRequestContextSource>>(
        webSocketRouter: Router<Context>,
        configuration: SocketIOHTTP1Channel.Configuration
    ) -> HTTPServerBuilder {
        let webSocketResponder = webSocketRouter.buildResponder()
        return HTTPServerBuilder { responder in
            SocketIOHTTP1Channel(responder: responder, webSocketResponder: webSocketResponder, configuration: configuration)
        }
    }
}

/// What the Engine.IO route grants an upgrade request: the server that takes the WebSocket and the request's handshake
/// (a `sid` in its query upgrades that polling session; none opens a new session).
struct SocketIOUpgradeTicket: Sendable {
    let server: SocketIOServer
    let handshake: SocketIOHandshake
}

/// Where the Engine.IO route leaves its ticket for the upgrade request being answered: a task-local set only around the
/// router's answer to an upgrade request, so other requests carry nothing for it.
final class SocketIOUpgradeSlot: Sendable {
    @TaskLocal static var current: SocketIOUpgradeSlot?

    private let ticket = Mutex<SocketIOUpgradeTicket?>(nil)

    func grant(_ ticket: SocketIOUpgradeTicket) {
        self.ticket.withLock { $0 = ticket }
    }

    func take() -> SocketIOUpgradeTicket? {
        self.ticket.withLock { $0.take() }
    }
}
