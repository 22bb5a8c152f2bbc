import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import ParleyApp
import ParleyTestSupport
import Testing

/// The chat role's Socket.IO endpoint, composed with the chat service and served in-process over long-polling.
@Suite struct RealtimeCompositionTests {
    @Test(arguments: DatabaseKind.allCases)
    func aSocketSendsAMessageThatIsStoredAndAcknowledged(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let ann = try await app.signIn()
            let ben = try await app.signIn()
            let opened = try await app.request(.post, "/api/v1/chats", as: ann, json: #"{"userId":"\#(ben.userID)"}"#)
            let chatID = try #require((try opened.json()["chat"] as? [String: Any])?["id"] as? String)

            let socket = try await PollingSocket.connect(app, token: ann.accessToken)
            try await socket.send(#"421["sendMessage",{"chatId":"\#(chatID)","text":"hello","clientMessageId":"c-1"}]"#)
            let ack = try await socket.receive { $0.hasPrefix("431[") }
            let answer = try #require(
                try JSONSerialization.jsonObject(with: Data(ack.dropFirst(3).utf8)) as? [[String: Any]]
            ).first
            #expect(answer?["ok"] as? Bool == true)
            let message = try #require(answer?["message"] as? [String: Any])
            #expect(message["seq"] as? Int == 1)
            #expect(message["text"] as? String == "hello")

            let history = try await app.request(.get, "/api/v1/chats/\(chatID)/messages", as: ben)
            let stored = try #require(try history.json()["messages"] as? [[String: Any]])
            #expect(stored.map { $0["text"] as? String } == ["hello"])
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aSocketWithoutAValidTokenIsRefused(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let socket = try await PollingSocket.open(app)
            try await socket.send(#"40{"token":"not-a-token"}"#)
            let refused = try await socket.receive { $0.hasPrefix("44") }
            #expect(refused.contains("unauthorized"))
        }
    }
}

/// A Socket.IO client over Engine.IO long-polling, enough to drive the server through in-process requests.
struct PollingSocket {
    let app: TestApp
    let sid: String

    /// Opens an Engine.IO session.
    static func open(_ app: TestApp) async throws -> PollingSocket {
        let handshake = try await app.request(.get, "/socket.io/?EIO=4&transport=polling")
        try #require(handshake.status == .ok, "handshake answered \(handshake.status)")
        let text = String(buffer: handshake.body)
        try #require(text.hasPrefix("0"), "not an OPEN packet: \(text)")
        let open = try #require(try JSONSerialization.jsonObject(with: Data(text.dropFirst().utf8)) as? [String: Any])
        return PollingSocket(app: app, sid: try #require(open["sid"] as? String))
    }

    /// Opens a session and connects to namespace `/` with `token`.
    static func connect(_ app: TestApp, token: String) async throws -> PollingSocket {
        let socket = try await Self.open(app)
        try await socket.send(#"40{"token":"\#(token)"}"#)
        _ = try await socket.receive { $0.hasPrefix("40") }
        return socket
    }

    /// Posts one packet.
    func send(_ packet: String) async throws {
        let response = try await self.app.request(
            .post,
            "/socket.io/?EIO=4&transport=polling&sid=\(self.sid)",
            headers: [.contentType: "text/plain;charset=UTF-8"],
            body: ByteBuffer(string: packet)
        )
        try #require(response.status == .ok, "POST answered \(response.status): \(String(buffer: response.body))")
    }

    /// Polls until a packet matching `wanted` arrives (pings are answered); at most `polls` long-polls.
    func receive(polls: Int = 10, _ wanted: (String) -> Bool) async throws -> String {
        for _ in 0..<polls {
            let response = try await self.app.request(.get, "/socket.io/?EIO=4&transport=polling&sid=\(self.sid)")
            try #require(response.status == .ok, "GET answered \(response.status)")
            for packet in String(buffer: response.body).split(separator: "\u{1e}").map(String.init) {
                if packet == "2" { try await self.send("3") }
                if wanted(packet) { return packet }
            }
        }
        throw FixtureError("no such packet in \(polls) polls")
    }
}
