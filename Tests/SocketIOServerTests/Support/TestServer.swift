import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SocketIOServer

/// A Socket.IO server with the echo handler, and the application that serves it as Parley wires it.
struct TestServer: Sendable {
    let handler = EchoHandler()
    let server: SocketIOServer
    let configuration: SocketIOConfiguration

    /// No ping during a test (the first would come after a minute), so a poll's body holds only what the test caused,
    /// however slowly a busy machine runs it. The default.
    static let quiet = SocketIOConfiguration(
        pingInterval: .seconds(60),
        pingTimeout: .seconds(5),
        maxPayload: 100_000,
        outboundQueueLimit: 64
    )

    /// Short timings for the tests whose subject is the heartbeat, so they run in a second or two.
    static let fast = SocketIOConfiguration(
        pingInterval: .milliseconds(300),
        pingTimeout: .milliseconds(300),
        maxPayload: 100_000,
        outboundQueueLimit: 64
    )

    /// Short timings for a live server and a Python client: the pong deadline leaves room for a busy machine (CI runs
    /// other suites beside this one on two cores), while pings still come every 300 ms.
    static let live = SocketIOConfiguration(
        pingInterval: .milliseconds(300),
        pingTimeout: .seconds(1),
        maxPayload: 100_000,
        outboundQueueLimit: 64
    )

    init(configuration: SocketIOConfiguration = Self.quiet) {
        var logger = Logger(label: "SocketIOServerTests")
        // SIO_TEST_LOG=debug (or trace) shows the sessions' lives when a test needs explaining.
        logger.logLevel = ProcessInfo.processInfo.environment["SIO_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
        self.configuration = configuration
        self.server = SocketIOServer(configuration: configuration, handler: self.handler, logger: logger)
        self.handler.attach(self.server)
    }

    /// The application: the same router serves HTTP and the WebSocket upgrade.
    func application() -> some ApplicationProtocol {
        var logger = Logger(label: "SocketIOServerTests.app")
        logger.logLevel = .warning
        let router = Router(context: BasicRequestContext.self)
        self.server.addRoutes(to: router)
        return Application(
            router: router,
            server: .http1SocketIO(webSocketRouter: router, configuration: .init(maxFrameSize: self.configuration.maxPayload)),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            services: [self.server],
            logger: logger
        )
    }

    /// Runs `body` against a live server on a free port with its base URL, then closes every session.
    func withLiveServer(_ body: @Sendable (_ url: String) async throws -> Void) async throws {
        try await self.application().test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)"
            do {
                try await body(url)
            } catch {
                self.server.shutdown()
                throw error
            }
            // Pending long-polls end now, so the application can stop at once.
            self.server.shutdown()
        }
    }
}
