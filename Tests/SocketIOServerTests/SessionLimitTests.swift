import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import SocketIOServer

/// What anyone can open before authenticating is capped: unauthenticated sessions per address and in all, and the rate of
/// new sessions per address; a refusal is an Engine.IO error body with 429 or 503 and Retry-After.
@Suite struct SessionLimitTests {
    static func server(_ limits: SocketIOConfiguration.Limits) -> TestServer {
        TestServer(configuration: .init(pingInterval: .seconds(60), pingTimeout: .seconds(5), maxPayload: 100_000, limits: limits))
    }

    static func handshake(_ client: some TestClientProtocol) async throws -> TestResponse {
        try await client.execute(uri: "/socket.io/?EIO=4&transport=polling", method: .get)
    }

    @Test func anAddressHoldsAtMostItsShareOfUnauthenticatedSessions() async throws {
        let server = Self.server(.init(maxPendingSessionsPerAddress: 3))
        try await PollingTests().withPolling(server) { polling, server in
            var sids: [String] = []
            for _ in 0..<3 { sids.append(try await polling.open()) }
            let refused = try await Self.handshake(polling.client)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[.retryAfter] == "1")
            #expect(String(buffer: refused.body) == #"{"code":4,"message":"Too many sessions from this address"}"#)
            #expect(server.server.sessionCount == 3 && server.server.unauthenticatedSessionCount == 3)

            // An authenticated session no longer counts: room for one more.
            #expect(try await polling.post(sids[0], #"40{"token":"good"}"#) == (.ok, "ok"))
            #expect(server.server.unauthenticatedSessionCount == 2)
            _ = try await polling.open()
            #expect(try await Self.handshake(polling.client).status == .tooManyRequests)
            // A refused CONNECT ends its session, and gives its place back.
            _ = try await polling.post(sids[1], #"40{"token":"bad"}"#)
            _ = try await polling.get(sids[1])
            await server.waitFor { server.server.unauthenticatedSessionCount == 2 }
            #expect(try await Self.handshake(polling.client).status == .ok)
        }
    }

    @Test func theServerHoldsAtMostItsCapOfUnauthenticatedSessions() async throws {
        let server = Self.server(.init(maxPendingSessions: 2))
        try await PollingTests().withPolling(server) { polling, _ in
            _ = try await polling.open()
            _ = try await polling.open()
            let refused = try await Self.handshake(polling.client)
            #expect(refused.status == .serviceUnavailable)
            #expect(String(buffer: refused.body) == #"{"code":4,"message":"Too many sessions"}"#)
        }
    }

    @Test func anAddressOpensSessionsAtMostAtItsRate() async throws {
        let server = Self.server(.init(handshakeBurst: 5, handshakesPerSecond: 0.001))
        try await PollingTests().withPolling(server) { polling, server in
            for _ in 0..<5 {
                let sid = try await polling.open()
                #expect(try await polling.post(sid, #"40{"token":"good"}"#) == (.ok, "ok"))
            }
            #expect(server.server.unauthenticatedSessionCount == 0)
            #expect(try await Self.handshake(polling.client).status == .tooManyRequests)
            // The WebSocket handshake is refused before the upgrade, with the same answer.
            let upgrade = try await polling.client.execute(
                uri: "/socket.io/?EIO=4&transport=websocket",
                method: .get,
                headers: [.upgrade: "websocket", .connection: "Upgrade", .secWebSocketVersion: "13", .secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ=="]
            )
            #expect(upgrade.status == .tooManyRequests)
        }
    }

    @Test func anIPv6AddressCountsByItsSlash64() {
        #expect(SessionLimits.key(of: "2001:db8:1:2:aaaa::1") == SessionLimits.key(of: "2001:db8:1:2:bbbb:cccc:dddd:2"))
        #expect(SessionLimits.key(of: "2001:db8:1:2::1") != SessionLimits.key(of: "2001:db8:1:3::1"))
        #expect(SessionLimits.key(of: "192.0.2.1") == "192.0.2.1")
        #expect(SessionLimits.key(of: "192.0.2.1") != SessionLimits.key(of: "192.0.2.2"))
    }
}
