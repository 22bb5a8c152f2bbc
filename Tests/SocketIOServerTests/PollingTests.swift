import Foundation
import Hummingbird
import HummingbirdTesting
import SocketIOProtocol
import Synchronization
import Testing

@testable import SocketIOServer

/// Engine.IO long-polling and the Socket.IO layer over it, through the router (no sockets).
@Suite struct PollingTests {
    /// Polling requests for one test, with the session id once open.
    struct Polling {
        let client: any TestClientProtocol

        func open(query: String = "", headers: HTTPFields = [:]) async throws -> String {
            let response = try await self.client.execute(uri: "/socket.io/?EIO=4&transport=polling\(query)", method: .get, headers: headers)
            #expect(response.status == .ok)
            let body = String(buffer: response.body)
            let handshake = try EngineHandshake(json: String(body.dropFirst()))
            return handshake.sid
        }

        func get(_ sid: String) async throws -> (status: HTTPResponse.Status, body: String) {
            let response = try await self.client.execute(uri: "/socket.io/?EIO=4&transport=polling&sid=\(sid)", method: .get)
            return (response.status, String(buffer: response.body))
        }

        func post(_ sid: String, _ body: String) async throws -> (status: HTTPResponse.Status, body: String) {
            let response = try await self.client.execute(
                uri: "/socket.io/?EIO=4&transport=polling&sid=\(sid)",
                method: .post,
                body: ByteBuffer(string: body)
            )
            return (response.status, String(buffer: response.body))
        }

        /// Opens a session and connects a socket with token "good".
        func connected() async throws -> String {
            let sid = try await self.open()
            #expect(try await self.post(sid, #"40{"token":"good"}"#) == (.ok, "ok"))
            #expect(try await self.get(sid).body.hasPrefix(#"40{"sid":""#))
            return sid
        }
    }

    static let unknownSession = #"{"code":1,"message":"Session ID unknown"}"#

    func withPolling(_ server: TestServer = TestServer(), _ body: @Sendable (Polling, TestServer) async throws -> Void) async throws {
        try await server.application().test(.router) { client in
            try await body(Polling(client: client), server)
            server.server.shutdown()
        }
    }

    @Test func theHandshakeOpensAPollingSessionThatOffersTheUpgrade() async throws {
        try await self.withPolling { polling, _ in
            let response = try await polling.client.execute(uri: "/socket.io/?EIO=4&transport=polling&t=abc", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; charset=UTF-8")
            let body = String(buffer: response.body)
            #expect(body.hasPrefix("0{"))
            let handshake = try EngineHandshake(json: String(body.dropFirst()))
            #expect(handshake.upgrades == ["websocket"])
            #expect(handshake.pingInterval == 60_000)
            #expect(handshake.pingTimeout == 5_000)
            #expect(handshake.maxPayload == 100_000)
            #expect(handshake.sid.count == 20)
        }
    }

    @Test func theTrailingSlashPathWorksToo() async throws {
        try await self.withPolling { polling, _ in
            let response = try await polling.client.execute(uri: "/socket.io/?EIO=4&transport=polling", method: .get)
            #expect(response.status == .ok)
            let bare = try await polling.client.execute(uri: "/socket.io?EIO=4&transport=polling", method: .get)
            #expect(bare.status == .ok)
        }
    }

    @Test(arguments: [
        ("/socket.io/?EIO=3&transport=polling", #"{"code":5,"message":"Unsupported protocol version"}"#),
        ("/socket.io/?transport=polling", #"{"code":5,"message":"Unsupported protocol version"}"#),
        ("/socket.io/?EIO=4&transport=carrier-pigeon", #"{"code":0,"message":"Transport unknown"}"#),
        ("/socket.io/?EIO=4&transport=polling&sid=nope", Self.unknownSession),
        ("/socket.io/?EIO=4&transport=websocket", #"{"code":3,"message":"Bad request"}"#),
    ])
    func refusedRequestsGetTheProtocolsErrorBody(uri: String, body: String) async throws {
        try await self.withPolling { polling, _ in
            let response = try await polling.client.execute(uri: uri, method: .get)
            #expect(response.status == .badRequest)
            #expect(String(buffer: response.body) == body)
        }
    }

    @Test func aPostMustNameALiveSession() async throws {
        try await self.withPolling { polling, _ in
            #expect(try await polling.post("nope", "40") == (.badRequest, Self.unknownSession))
            let handshake = try await polling.client.execute(
                uri: "/socket.io/?EIO=4&transport=polling",
                method: .post,
                body: ByteBuffer(string: "40")
            )
            #expect(String(buffer: handshake.body) == #"{"code":2,"message":"Bad handshake method"}"#)
        }
    }

    @Test func connectWithAGoodTokenIsAnsweredWithTheSocketID() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.open()
            #expect(try await polling.post(sid, #"40{"token":"good"}"#) == (.ok, "ok"))
            let reply = try await polling.get(sid).body
            let socketID = try #require(server.server.sockets(ofUser: "alice").first?.id)
            #expect(reply == #"40{"sid":"\#(socketID)"}"#)
            #expect(socketID != sid)
            #expect(server.handler.calls.events == [.connected(user: "alice")])
            #expect(server.server.socketCount == 1)
        }
    }

    /// A refused CONNECT ends the session: a client cannot retry on one session without end.
    @Test func aBadTokenIsRefusedWithUnauthorizedAndTheSessionCloses() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.open()
            _ = try await polling.post(sid, #"40{"token":"bad"}"#)
            #expect(try await polling.get(sid).body == "44{\"message\":\"unauthorized\"}\u{1E}1")
            #expect(try await polling.post(sid, "40").status == .badRequest)
            #expect(server.server.socketCount == 0)
            #expect(server.server.sessionCount == 0)
        }
    }

    /// CONNECT data before authentication is small: a larger one is refused unread, and the session closes.
    @Test func largeConnectDataIsRefusedUnread() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.open()
            let padding = String(repeating: "x", count: 4096)
            _ = try await polling.post(sid, #"40{"token":"good","padding":"\#(padding)"}"#)
            #expect(try await polling.get(sid).body == "44{\"message\":\"unauthorized\"}\u{1E}1")
            #expect(server.handler.calls.events.isEmpty)
            #expect(server.server.sessionCount == 0)
        }
    }

    /// A session that admits no socket within `connectTimeout` is closed then, even before its first ping.
    @Test func aSessionWithoutASocketClosesAfterTheConnectTimeout() async throws {
        let server = TestServer(
            configuration: .init(pingInterval: .seconds(60), pingTimeout: .seconds(5), maxPayload: 100_000, connectTimeout: .milliseconds(300))
        )
        try await self.withPolling(server) { polling, server in
            let started = ContinuousClock.now
            let sid = try await polling.open()
            #expect(try await polling.get(sid).body == "1")
            #expect(started.duration(to: .now) < .seconds(30))
            #expect(server.server.sessionCount == 0)
        }
    }

    @Test func theHandshakeHeaderOrQueryCanCarryTheToken() async throws {
        try await self.withPolling { polling, server in
            let byHeader = try await polling.open(headers: [.authorization: "Bearer good"])
            _ = try await polling.post(byHeader, "40")
            #expect(try await polling.get(byHeader).body.hasPrefix(#"40{"sid":""#))
            let byQuery = try await polling.open(query: "&token=good")
            _ = try await polling.post(byQuery, "40")
            #expect(try await polling.get(byQuery).body.hasPrefix(#"40{"sid":""#))
            #expect(server.server.sockets(ofUser: "alice").count == 2)
        }
    }

    @Test func otherNamespacesAreRefused() async throws {
        try await self.withPolling { polling, _ in
            let sid = try await polling.open()
            _ = try await polling.post(sid, #"40/admin,{"token":"good"}"#)
            #expect(try await polling.get(sid).body == #"44/admin,{"message":"Invalid namespace"}"#)
        }
    }

    @Test func eventsBeforeConnectAreIgnored() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.open()
            #expect(try await polling.post(sid, #"420["echo",1]"#) == (.ok, "ok"))
            #expect(server.handler.calls.events.isEmpty)
            _ = try await polling.post(sid, #"40{"token":"good"}"#)
            #expect(try await polling.get(sid).body.hasPrefix(#"40{"sid""#))
        }
    }

    @Test func anEventWithAnAckIdGetsItsAck() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.connected()
            _ = try await polling.post(sid, #"420["echo",{"a":[1,"two"]}]"#)
            #expect(try await polling.get(sid).body == #"430[{"a":[1,"two"]}]"#)
            #expect(server.handler.calls.events.last == .received(event: "echo", arguments: [["a": [1, "two"]]]))
        }
    }

    @Test func severalPacketsInOneBodyAreHandledInOrderAndAnsweredInOneBatch() async throws {
        try await self.withPolling { polling, _ in
            let sid = try await polling.connected()
            _ = try await polling.post(sid, "42[\"echo\",1]\u{1E}42[\"echo\",2]\u{1E}423[\"echo\",3]")
            #expect(try await polling.get(sid).body == "42[\"echo\",1]\u{1E}42[\"echo\",2]\u{1E}433[3]")
        }
    }

    @Test func aSecondConcurrentGetClosesTheSession() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.connected()
            async let first = polling.get(sid)
            await server.waitForParkedPoll(sid)
            let second = try await polling.get(sid)
            #expect(second == (.badRequest, #"{"code":3,"message":"Bad request"}"#))
            #expect(try await first.body == "1")
            #expect(try await polling.post(sid, "3") == (.badRequest, Self.unknownSession))
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["transport error"] })
        }
    }

    @Test func aBodyOverMaxPayloadIsRefusedAndClosesTheSession() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.connected()
            let body = #"42["echo",""# + String(repeating: "x", count: 100_000) + #""]"#
            #expect(try await polling.post(sid, body).status == .contentTooLarge)
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["transport error"] })
            #expect(try await polling.get(sid).status == .badRequest)
        }
    }

    @Test func disconnectThenCloseEndsTheSocketAndTheSession() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.connected()
            _ = try await polling.post(sid, "41\u{1E}1")
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["client namespace disconnect"] })
            #expect(server.server.socketCount == 0)
            #expect(server.server.sessionCount == 0)
        }
    }

    @Test func binaryPacketsCloseTheSession() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.connected()
            _ = try await polling.post(sid, #"451-["upload",{"_placeholder":true,"num":0}]"#)
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["parse error"] })
            #expect(server.server.sessionCount == 0)
        }
    }

    @Test func aMalformedEventClosesTheSession() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.connected()
            _ = try await polling.post(sid, #"42["connect"]"#)
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["parse error"] })
        }
    }

    @Test func theServerPingsOverPollingAndAPongKeepsTheSession() async throws {
        try await self.withPolling(TestServer(configuration: TestServer.live)) { polling, server in
            // Not `connected()`: on a busy machine the first ping may share a poll with the connect answer.
            let sid = try await polling.open()
            _ = try await polling.post(sid, #"40{"token":"good"}"#)
            var pings = 0
            while pings < 3 {
                let poll = try await polling.get(sid)
                try #require(poll.status == .ok, "\(poll.body)")
                let packets = poll.body.split(separator: "\u{1E}")
                #expect(packets.allSatisfy { $0 == "2" || $0.hasPrefix(#"40{"sid""#) }, "\(packets)")
                for packet in packets where packet == "2" {
                    pings += 1
                    _ = try await polling.post(sid, "3")
                }
            }
            #expect(server.server.sessionCount == 1)
            #expect(server.handler.calls.events.disconnectReasons.isEmpty)
        }
    }

    @Test func aMissingPongClosesTheSessionWithPingTimeout() async throws {
        try await self.withPolling(TestServer(configuration: TestServer.fast)) { polling, server in
            let sid = try await polling.connected()
            let started = ContinuousClock.now
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["ping timeout"] })
            // 600 ms on an idle machine; the bound leaves room for a busy one, and is far below the quiet default's.
            #expect(started.duration(to: .now) < .seconds(5))
            // The handler hears of the close just before the session leaves the table (a GET between the two is
            // answered with the close packet).
            #expect(await StockClientTests.eventually { server.server.sessionCount == 0 })
            #expect(try await polling.get(sid).status == .badRequest)
        }
    }

    @Test func theServerCanDisconnectASocket() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.connected()
            _ = try await polling.post(sid, #"42["bye"]"#)
            #expect(try await polling.get(sid).body == "41\u{1E}1")
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["server namespace disconnect"] })
            #expect(server.server.sessionCount == 0)
        }
    }

    /// Closing a session while its heartbeat waits for a pong (when that wait was a task of its own, cancelling it under
    /// the session's lock crashed the process: its cancellation handler took the lock).
    @Test func theServerCanDisconnectASocketWhileAPingAwaitsItsPong() async throws {
        let server = TestServer(configuration: .init(pingInterval: .milliseconds(20), pingTimeout: .seconds(5), maxPayload: 100_000))
        try await self.withPolling(server) { polling, server in
            // Many at once: the pong wait must still be registered when the close cancels it, which a busy executor makes
            // likely (one session alone closes too fast on an idle one).
            let sessions = 64
            try await withThrowingTaskGroup { group in
                for _ in 0..<sessions {
                    group.addTask {
                        let sid = try await polling.open()
                        #expect(try await polling.post(sid, #"40{"token":"good"}"#) == (.ok, "ok"))
                        // The connect answer and the first ping, in either order, in one poll or two.
                        var packets: [Substring] = []
                        for _ in 0..<2 where packets.count < 2 {
                            packets += try await polling.get(sid).body.split(separator: "\u{1E}")
                        }
                        #expect(packets.count == 2 && packets.contains("2") && packets.contains { $0.hasPrefix(#"40{"sid":""#) })
                        let session = try #require(server.server.registry.connection(sid: sid)?.session)
                        await server.waitFor { session.state.withLock { $0.deadline?.kind == .pong } }
                        _ = try await polling.post(sid, #"42["bye"]"#)
                        #expect(try await polling.get(sid).body == "41\u{1E}1")
                    }
                }
                try await group.waitForAll()
            }
            #expect(await server.handler.calls.wait { $0.disconnectReasons.count == sessions })
        }
    }

    @Test func aSocketThatFallsBehindIsDisconnected() async throws {
        try await self.withPolling { polling, server in
            let sid = try await polling.connected()
            _ = try await polling.post(sid, #"42["emitMany",100]"#)
            #expect(await server.handler.calls.wait { $0.disconnectReasons == ["transport error"] })
            #expect(server.server.socketCount == 0)
        }
    }

    @Test func userEmitsReachEverySocketOfTheUserOnce() async throws {
        try await self.withPolling { polling, server in
            let first = try await polling.connected()
            let second = try await polling.connected()
            server.server.emit(EncodedEvent(name: "news", encodedArguments: [#"{"id":7}"#]), toUsers: ["alice", "bob"])
            #expect(try await polling.get(first).body == #"42["news",{"id":7}]"#)
            #expect(try await polling.get(second).body == #"42["news",{"id":7}]"#)
        }
    }
}

extension TestServer {
    /// Returns once a long-poll GET of session `sid` is suspended, yielding meanwhile.
    func waitForParkedPoll(_ sid: String) async {
        await self.waitFor {
            self.server.registry.connection(sid: sid)?.session.state.withLock { $0.pollWaiter != nil } ?? false
        }
    }

    /// Returns once `condition` holds (or after 5 s), yielding meanwhile.
    func waitFor(_ condition: () -> Bool) async {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline, !condition() {
            await Task.yield()
        }
    }
}
