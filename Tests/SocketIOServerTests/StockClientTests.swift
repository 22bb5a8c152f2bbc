import Foundation
import Testing

@testable import SocketIOServer

/// The stock python-socketio 5 client (and raw Engine.IO over requests + websocket-client) against a live server.
///
/// Serialized: each test starts a Python process, and on two cores parallel ones would stretch the short heartbeat
/// timings these tests rely on.
@Suite(.serialized, .enabled(if: PythonClient.isAvailable, "needs python3 with python-socketio, websocket-client, requests"))
struct StockClientTests {
    /// Runs a client.py scenario against a fresh live server and expects it to succeed.
    func expectScenario(
        _ scenario: String,
        transport: String = "default",
        argument: String? = nil,
        server: TestServer = TestServer(configuration: TestServer.live),
        then check: @Sendable (TestServer) async throws -> Void = { _ in }
    ) async throws {
        try await server.withLiveServer { url in
            let result = try await PythonClient.run("client.py", url, scenario, transport, argument ?? "")
            #expect(result.status == 0, "\(scenario) over \(transport): \(result.stdout)\(result.stderr)")
            try await check(server)
        }
    }

    /// How a client's own `disconnect()` reaches the server. python-engineio queues `41` and `1`, then races them: over
    /// WebSocket it closes the socket at once (the server may see only the transport close); over polling its writer
    /// may stop before posting them (the server sees the client go silent: ping timeout). The polling tests check
    /// `41` → `client namespace disconnect` byte for byte.
    static func clientLeaveReasons(_ transport: String) -> Set<String> {
        let raced = transport == "polling" ? "ping timeout" : "transport close"
        return ["client namespace disconnect", raced]
    }

    /// Expects one socket, connected then disconnected once, for one of `reasons`.
    static func expectOneVisit(_ server: TestServer, leaving reasons: Set<String>) async {
        let left = await server.handler.calls.wait { !$0.disconnectReasons.isEmpty }
        let calls = server.handler.calls.events
        #expect(left, "\(calls)")
        #expect(calls.first == .connected(user: "alice"))
        #expect(calls.connectedCount == 1)
        #expect(calls.disconnectReasons.count == 1)
        #expect(reasons.contains(calls.disconnectReasons.first ?? ""), "\(calls.disconnectReasons)")
    }

    @Test(arguments: ["default", "websocket", "polling"])
    func connectsWithAuthAndAnAckRoundTrips(transport: String) async throws {
        try await self.expectScenario("connect", transport: transport) { server in
            await Self.expectOneVisit(server, leaving: Self.clientLeaveReasons(transport))
            #expect(await Self.eventually { server.server.sessionCount == 0 && server.server.socketCount == 0 })
        }
    }

    @Test(arguments: ["default", "websocket"])
    func aBadTokenIsRefusedWithUnauthorized(transport: String) async throws {
        try await self.expectScenario("refused", transport: transport) { server in
            #expect(server.handler.calls.events.isEmpty)
        }
    }

    @Test func theAuthorizationHeaderAuthenticatesAWebSocketSession() async throws {
        try await self.expectScenario("header-auth", transport: "websocket")
    }

    @Test(arguments: ["default", "websocket", "polling"])
    func aServerEmitArrives(transport: String) async throws {
        try await self.expectScenario("server-emit", transport: transport)
    }

    @Test(arguments: ["default", "websocket", "polling"])
    func twentyQuickEventsAreEchoedInOrder(transport: String) async throws {
        try await self.expectScenario("order", transport: transport, argument: "20")
    }

    @Test(arguments: ["websocket", "polling"])
    func theServerCanDisconnectTheClient(transport: String) async throws {
        try await self.expectScenario("server-disconnect", transport: transport) { server in
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["server namespace disconnect"] })
        }
    }

    @Test(arguments: ["default", "polling"])
    func theClientStaysConnectedAcrossSeveralPingIntervals(transport: String) async throws {
        try await self.expectScenario("stay", transport: transport, argument: "2") { server in
            await Self.expectOneVisit(server, leaving: Self.clientLeaveReasons(transport))
        }
    }

    @Test(arguments: ["default", "websocket"])
    func aKilledClientIsNoticed(transport: String) async throws {
        try await self.expectDropped(transport: transport, signal: SIGKILL, reasons: ["transport close", "ping timeout"])
    }

    @Test(arguments: ["websocket", "polling"])
    func aClientThatStopsAnsweringPingsIsDropped(transport: String) async throws {
        try await self.expectDropped(transport: transport, signal: SIGSTOP, reasons: ["ping timeout"])
    }

    /// Connects a client, signals it, and expects the server to drop it within pingInterval + pingTimeout (plus slack).
    func expectDropped(transport: String, signal: Int32, reasons: Set<String>) async throws {
        let server = TestServer(configuration: TestServer.live)
        try await server.withLiveServer { url in
            let client = try PythonClient(script: "client.py", arguments: [url, "hang", transport])
            defer { client.signal(SIGKILL) }
            #expect(await client.waitForOutput("connected over"), "\(client.stdout)\(client.stderr)")
            let signalled = ContinuousClock.now
            client.signal(signal)
            #expect(await server.handler.calls.wait(timeout: .seconds(5)) { !$0.disconnectReasons.isEmpty })
            let waited = signalled.duration(to: .now)
            let reason = server.handler.calls.events.disconnectReasons.first ?? "none"
            #expect(reasons.contains(reason), "dropped with \(reason)")
            #expect(waited < server.configuration.pingInterval + server.configuration.pingTimeout + .seconds(1))
            #expect(await Self.eventually { server.server.sessionCount == 0 })
        }
    }

    @Test func theUpgradeAnswersTheProbeEndsTheLongPollAndKeepsQueuedPacketsInOrder() async throws {
        let server = TestServer(configuration: .init(pingInterval: .seconds(5), pingTimeout: .seconds(5), maxPayload: 100_000))
        try await server.withLiveServer { url in
            let result = try await PythonClient.run("raw.py", url, "upgrade")
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            await Self.expectOneVisit(server, leaving: ["client namespace disconnect"])
        }
    }

    @Test func aWebSocketFrameOverMaxPayloadClosesThatConnection() async throws {
        let server = TestServer(configuration: .init(pingInterval: .seconds(5), pingTimeout: .seconds(5), maxPayload: 100_000))
        try await server.withLiveServer { url in
            let result = try await PythonClient.run("raw.py", url, "oversize", "100000")
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("echoed 50000 bytes"))
            // The server stops reading at the frame header and closes with 1009; as the client is still sending, its
            // kernel may see a reset before it reads the close frame, so only "closed" is certain.
            #expect(result.stdout.contains("closed"), "\(result.stdout)")
            #expect(await server.handler.calls.wait { $0.disconnectReasons.count == 1 })
            #expect(await Self.eventually { server.server.sessionCount == 0 })
        }
    }

    @Test func textThatIsNotUTF8Closes1007AndFragmentsOverMaxPayload1009() async throws {
        let server = TestServer(configuration: .init(pingInterval: .seconds(5), pingTimeout: .seconds(5), maxPayload: 100_000))
        try await server.withLiveServer { url in
            let result = try await PythonClient.run("raw.py", url, "closecodes", "100000")
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("not UTF-8: closed 1007"), "\(result.stdout)")
            #expect(result.stdout.contains("fragments over maxPayload: closed 1009"), "\(result.stdout)")
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["transport error", "transport error"] })
            #expect(await Self.eventually { server.server.sessionCount == 0 })
        }
    }

    /// A WebSocket client that stops reading is closed once NIO's write buffer and `outboundQueueLimit` more events wait
    /// for it (the kernel's buffers first fill with 64 KiB events); a socket of the same user that reads gets every
    /// event, in order, and stays.
    @Test func aWebSocketThatStopsReadingIsClosedAndABystanderGetsEverything() async throws {
        let server = TestServer(configuration: .init(pingInterval: .seconds(60), pingTimeout: .seconds(30), outboundQueueLimit: 64))
        try await server.withLiveServer { url in
            let client = try PythonClient(script: "raw.py", arguments: [url, "stall"])
            #expect(await client.waitForOutput("bystander connected"), "\(client.stdout)\(client.stderr)")
            let big = EncodedEvent(name: "big", encodedArguments: ["\"" + String(repeating: "b", count: 64 * 1024) + "\""])
            var sent = 0
            // Paced by the bystander, 32 at a time, until the stalled socket is dropped (at most 64 MiB).
            while server.handler.calls.events.disconnectReasons.isEmpty && sent < 1024 {
                for _ in 0..<32 {
                    server.server.emit(big, toUsers: ["alice"])
                }
                sent += 32
                #expect(await client.waitForOutput("got \(sent)\n"), "\(client.stdout)\(client.stderr)")
            }
            #expect(server.handler.calls.events.disconnectReasons == ["transport error"])
            #expect(server.server.socketCount == 1)
            server.server.emit(EncodedEvent(name: "done", encodedArguments: []), toUsers: ["alice"])
            #expect(await client.exit(timeout: .seconds(20)) == 0, "\(client.stdout)\(client.stderr)")
            #expect(client.stdout.contains("bystander got \(sent) then done"), "\(client.stdout)")
        }
    }

    /// Waits up to five seconds for `condition`, checking it as other tasks run.
    static func eventually(_ condition: @Sendable () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}
