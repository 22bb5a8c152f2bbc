import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// `POST /chats/{id}/read`: the read pointer, and what the route refuses.
@Suite struct ReadRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database: building an application
    /// and its database costs more than most behaviours, and the sign-ins of all of them pass the per-address limit.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.theReadPointerMovesForwardOnlyAndIsCapped(app)
            try await Self.readingAnEmptyChatStaysAt0(app)
            try await Self.readRejectsBadSeqsWith400(app)
            try await Self.readWithANonJSONMediaTypeIs415(app)
        }
    }

    static func theReadPointerMovesForwardOnlyAndIsCapped(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        for index in 0..<5 { try await app.send(alice, to: chatID, "r\(index)") }

        try await app.markRead(bob, chatID, seq: "4").expectNoContent()
        #expect(Shapes.readState(try await app.chat(alice, chatID))[bob.userID] == 4)
        #expect(try await app.chat(bob, chatID)["unreadCount"] as? Int == 1)

        try await app.markRead(bob, chatID, seq: "2").expectNoContent()
        try await app.markRead(bob, chatID, seq: "0").expectNoContent()
        #expect(Shapes.readState(try await app.chat(alice, chatID))[bob.userID] == 4, "a lower seq must not move the pointer back")
        #expect(try await app.chat(bob, chatID)["unreadCount"] as? Int == 1)

        try await app.markRead(bob, chatID, seq: "999999").expectNoContent()
        let chat = try await app.chat(bob, chatID)
        #expect(Shapes.readState(chat)[bob.userID] == 5, "a seq beyond the last message is capped at the last")
        #expect(chat["unreadCount"] as? Int == 0)
        try await app.send(alice, to: chatID, "one more")
        #expect(try await app.chat(bob, chatID)["unreadCount"] as? Int == 1)
    }

    static func readingAnEmptyChatStaysAt0(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)

        try await app.markRead(bob, chatID, seq: "10").expectNoContent()

        let chat = try await app.chat(bob, chatID)
        #expect(Shapes.readState(chat)[bob.userID] == 0 && chat["unreadCount"] as? Int == 0)
        try await app.send(alice, to: chatID)
        #expect(try await app.chat(bob, chatID)["unreadCount"] as? Int == 1)
    }

    static func readRejectsBadSeqsWith400(_ app: TestApp) async throws {
        let bodies: [(String, String, String)] = [
            ("negative", #"{"seq":-1}"#, "invalid_seq"), ("string", #"{"seq":"3"}"#, "invalid_request"),
            ("fraction", #"{"seq":1.5}"#, "invalid_request"), ("null", #"{"seq":null}"#, "invalid_request"),
            ("missing", "{}", "invalid_request"), ("list", #"{"seq":[1]}"#, "invalid_request"),
            ("overflow", #"{"seq":99999999999999999999999}"#, "invalid_request"), ("array", "[]", "invalid_request"),
            ("null-body", "null", "invalid_request"),
        ]
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        try await app.send(alice, to: chatID)
        for (name, body, code) in bodies {
            let response = try await app.request(.post, "/api/v1/chats/\(chatID)/read", as: bob, raw: body)
            try response.expectError(.badRequest, code: code, "\(name)")
        }
        #expect(Shapes.readState(try await app.chat(bob, chatID))[bob.userID] == 0)
    }

    static func readWithANonJSONMediaTypeIs415(_ app: TestApp) async throws {
        let (_, bob, chatID) = try await MessageRouteTests.pair(app)
        let response = try await app.request(.post, "/api/v1/chats/\(chatID)/read", as: bob, raw: #"{"seq":1}"#, contentType: "text/plain")
        try response.expectError(.unsupportedMediaType, code: "unsupported_media_type")
    }
}
