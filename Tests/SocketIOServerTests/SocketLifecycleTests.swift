import HTTPTypes
import Logging
import SocketIOProtocol
import Synchronization
import Testing

@testable import SocketIOServer

/// The Socket.IO layer's promises to the handler, and the release of everything a session holds; no network.
@Suite struct SocketLifecycleTests {
    /// A handler whose `connected` waits until the test lets it go, recording the order of calls.
    final class GatedHandler: SocketIOHandler {
        let calls = EventLog<String>()
        private let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let opened = Mutex(false)

        func authenticate(auth: JSONValue?, handshake: SocketIOHandshake) async -> SocketIOAdmission? { SocketIOAdmission(userID: "alice") }

        func connected(_ socket: SocketIOSocket) async {
            self.calls.append("connected")
            await withCheckedContinuation { continuation in
                let open = self.opened.withLock { opened in
                    if !opened { self.gate.withLock { $0 = continuation } }
                    return opened
                }
                if open { continuation.resume() }
            }
            self.calls.append("connected returns")
        }

        func received(event: String, arguments: [JSONValue], from socket: SocketIOSocket, ack: SocketIOAck?) async {
            self.calls.append("received \(event)")
        }

        func disconnected(_ socket: SocketIOSocket, reason: String) async {
            self.calls.append("disconnected \(reason)")
        }

        /// Lets `connected` return.
        func open() {
            let waiting = self.opened.withLock { opened in
                opened = true
                return self.gate.withLock { gate in
                    defer { gate = nil }
                    return gate
                }
            }
            waiting?.resume()
        }
    }

    /// Runs `body` with a server for `handler` whose `disconnected` calls run (as its `run()` runs them in the
    /// application), until `body` returns and the calls it caused have been made.
    static func withServer(_ handler: some SocketIOHandler, _ body: (SocketIOServer) async throws -> Void) async throws {
        let server = SocketIOServer(configuration: TestServer.fast, handler: handler, logger: Logger(label: "SocketLifecycleTests"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await server.clock.run() }
            group.addTask { await server.tasks.run() }
            do {
                try await body(server)
            } catch {
                server.clock.finish()
                server.tasks.finish()
                throw error
            }
            server.clock.finish()
            server.tasks.finish()
            try await group.waitForAll()
        }
    }

    static let handshake = SocketIOHandshake(headers: [:], query: [:], remoteAddress: nil)

    @Test func disconnectedWaitsForConnectedToReturn() async throws {
        let handler = GatedHandler()
        try await Self.withServer(handler) { server in
            let connection = try server.openSession(transport: .polling, handshake: Self.handshake).get()
            async let connecting: Void = connection.receive(.message("0"))
            #expect(await handler.calls.wait { $0 == ["connected"] })
            connection.session.close(.transportClose)
            // The socket leaves the rooms at once, but the handler hears of it only after `connected` returns.
            #expect(server.socketCount == 0)
            #expect(handler.calls.events == ["connected"])
            handler.open()
            await connecting
            #expect(await handler.calls.wait { $0 == ["connected", "connected returns", "disconnected transport close"] })
        }
    }

    @Test func aSessionClosedDuringAuthenticationNeverConnects() async throws {
        final class SlowHandler: SocketIOHandler {
            let calls = EventLog<String>()
            let session: Mutex<EngineSession?> = Mutex(nil)
            func authenticate(auth: JSONValue?, handshake: SocketIOHandshake) async -> SocketIOAdmission? {
                self.session.withLock { $0 }?.close(.transportClose)
                return SocketIOAdmission(userID: "alice")
            }
            func connected(_ socket: SocketIOSocket) async { self.calls.append("connected") }
            func received(event: String, arguments: [JSONValue], from socket: SocketIOSocket, ack: SocketIOAck?) async {}
            func disconnected(_ socket: SocketIOSocket, reason: String) async { self.calls.append("disconnected") }
        }
        let handler = SlowHandler()
        try await Self.withServer(handler) { server in
            let connection = try server.openSession(transport: .polling, handshake: Self.handshake).get()
            handler.session.withLock { $0 = connection.session }
            await connection.receive(.message("0"))
            #expect(handler.calls.events.isEmpty)
            #expect(server.socketCount == 0)
            #expect(server.sessionCount == 0)
        }
    }

    @Test func aFinishedSessionIsReleased() async throws {
        let handler = GatedHandler()
        handler.open()
        try await Self.withServer(handler) { server in
            weak var released: EngineSession?
            do {
                let connection = try server.openSession(transport: .webSocket, handshake: Self.handshake).get()
                released = connection.session
                await connection.receive(.message("0"))
                #expect(server.socketCount == 1)
                connection.session.close(.transportClose)
            }
            #expect(await handler.calls.wait { $0.contains("disconnected transport close") })
            #expect(server.sessionCount == 0)
            #expect(server.socketCount == 0)
            // The heartbeat task held the session until its cancellation ran; nothing else may keep it.
            let deadline = ContinuousClock.now + .seconds(5)
            while released != nil && ContinuousClock.now < deadline {
                await Task.yield()
            }
            #expect(released == nil)
        }
    }
}
