import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// `POST /chats/{id}/messages` (JSON) and `GET /chats/{id}/messages` (history and its bounds).
@Suite struct MessageRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database: building an application
    /// and its database costs more than most behaviours, and the sign-ins of all of them pass the per-address limit.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.messagesGetDenseSeqsFrom1(app)
            try await Self.aReplayedClientMessageIDReturnsTheSameMessage(app)
            try await Self.aMessageWithoutAClientMessageIDIsAccepted(app)
            try await Self.textsUpTo4000CharactersAreKeptVerbatim(app)
            try await Self.htmlIsStoredAndReturnedVerbatimAsText(app)
            try await Self.sendRejectsBadMessagesWith400(app)
            try await Self.sendErrorCodes(app)
            try await Self.sendRejectsInvalidJSON(app)
            try await Self.sendWithANonJSONMediaTypeIs415(app)
            try await Self.aJSONMessageBodyOver64KiBIs413(app)
            try await Self.historyPagesWithBeforeAfterLimitAndHasMore(app)
            try await Self.walkingHistoryBackwardsHasNoGaps(app)
            try await Self.historyRejectsBadBounds(app)
        }
    }

    /// Two people and their direct chat.
    static func pair(_ app: TestApp) async throws -> (Session, Session, String) {
        let people = try await app.signIn(count: 2)
        return (people[0], people[1], try await app.directChat(people[0], with: people[1]))
    }

    static func post(_ app: TestApp, _ session: Session, _ chatID: String, text: String, clientMessageID: String) async throws -> TestResponse {
        let json = jsonText(["text": text, "clientMessageId": clientMessageID])
        return try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: session, json: json)
    }

    // MARK: Sending

    static func messagesGetDenseSeqsFrom1(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await Self.pair(app)
        var sent: [[String: Any]] = []
        for (index, sender) in [alice, bob, alice, alice, bob].enumerated() {
            sent.append(try await app.send(sender, to: chatID, "message \(index)"))
        }

        #expect(sent.compactMap { $0["seq"] as? Int } == [1, 2, 3, 4, 5])
        #expect(sent.compactMap { $0["senderId"] as? String } == [alice, bob, alice, alice, bob].map(\.userID))
        for (index, message) in sent.enumerated() {
            #expect(message["chatId"] as? String == chatID && message["kind"] as? String == "text")
            #expect(message["text"] as? String == "message \(index)")
            #expect(message["image"] == nil || message["image"] is NSNull)
        }
        #expect(sameJSON(try await app.history(alice, chatID)["messages"], sent))
        // Seqs are per chat: another chat starts again at 1.
        let other = try #require(try await app.createGroup(alice, name: "Fresh", members: [bob])["id"] as? String)
        #expect(try await app.send(bob, to: other)["seq"] as? Int == 1)
    }

    static func aReplayedClientMessageIDReturnsTheSameMessage(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await Self.pair(app)
        let first = try await app.send(alice, to: chatID, "only once", clientMessageID: "retry-me-1")
        try await app.send(bob, to: chatID, "in between")

        let replayed = try await app.send(alice, to: chatID, "only once", clientMessageID: "retry-me-1", status: .ok)
        let changedText = try await app.send(alice, to: chatID, "a different text", clientMessageID: "retry-me-1", status: .ok)

        #expect(sameJSON(replayed, first) && sameJSON(changedText, first))
        #expect(first["clientMessageId"] as? String == "retry-me-1")
        let page = try await app.history(bob, chatID)
        #expect(Shapes.seqs(page) == [1, 2])
        #expect((page["messages"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String } == ["only once", "in between"])
        // The id is the sender's: another member may use the same one.
        let bobs = try await app.send(bob, to: chatID, "bob's own", clientMessageID: "retry-me-1", status: .created)
        #expect(bobs["seq"] as? Int == 3 && bobs["senderId"] as? String == bob.userID)
    }

    static func aMessageWithoutAClientMessageIDIsAccepted(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await Self.pair(app)
        let body = try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: alice, json: #"{"text":"no id"}"#).expectJSON(.created)
        let message = try #require(body["message"] as? [String: Any])
        #expect(message["text"] as? String == "no id")
        #expect(message["clientMessageId"] == nil || message["clientMessageId"] is NSNull)
        #expect(message["seq"] as? Int == 1)
    }

    static func textsUpTo4000CharactersAreKeptVerbatim(_ app: TestApp) async throws {
        let texts = [
            String(repeating: "a", count: 4000), String(repeating: "é", count: 4000), "line one\nline two\ttabbed\r\n", "  padded  ", "😀",
        ]
        let (alice, bob, chatID) = try await Self.pair(app)
        for (index, text) in texts.enumerated() {
            let message = try await app.send(alice, to: chatID, text)
            #expect(message["text"] as? String == text)
            let seen = (try await app.history(bob, chatID)["messages"] as? [[String: Any]])?[index]
            #expect(seen?["text"] as? String == text)
        }
    }

    static func htmlIsStoredAndReturnedVerbatimAsText(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await Self.pair(app)
        let payload = xss + #" <img src=x onerror="alert(2)"> &amp; "quotes" 'single'"#

        let message = try await app.send(alice, to: chatID, payload)

        #expect(message["text"] as? String == payload)
        let page = try await app.request(.get, "/api/v1/chats/\(chatID)/messages", as: bob).expectJSON(.ok)
        #expect((page["messages"] as? [[String: Any]])?.first?["text"] as? String == payload)
        let chats = try await app.chatPage(bob)["chats"] as? [[String: Any]]
        #expect((chats?.first?["lastMessage"] as? [String: Any])?["text"] as? String == payload)
    }

    static func sendRejectsBadMessagesWith400(_ app: TestApp) async throws {
        let bodies: [(String, String, String)] = [
            ("4001-chars", #"{"text":"\#(String(repeating: "a", count: 4001))","clientMessageId":"c1"}"#, "text_too_long"),
            ("empty", #"{"text":"","clientMessageId":"c1"}"#, "invalid_text"),
            ("spaces", #"{"text":"   ","clientMessageId":"c1"}"#, "invalid_text"),
            ("whitespace-mix", #"{"text":" \n\t\r\n ","clientMessageId":"c1"}"#, "invalid_text"),
            ("unicode-spaces", #"{"text":"\u00a0\u3000","clientMessageId":"c1"}"#, "invalid_text"),
            ("missing-text", #"{"clientMessageId":"c1"}"#, "invalid_text"),
            ("null-text", #"{"text":null,"clientMessageId":"c1"}"#, "invalid_text"),
            ("empty-object", "{}", "invalid_text"),
            ("nul", #"{"text":"nul \u0000 inside","clientMessageId":"c1"}"#, "invalid_text"),
            ("bell", #"{"text":"bell \u0007","clientMessageId":"c1"}"#, "invalid_text"),
            ("escape", #"{"text":"escape \u001b[31mred","clientMessageId":"c1"}"#, "invalid_text"),
            ("delete", #"{"text":"delete \u007f","clientMessageId":"c1"}"#, "invalid_text"),
            ("c1-control", #"{"text":"c1 control \u0085","clientMessageId":"c1"}"#, "invalid_text"),
            ("number", #"{"text":5,"clientMessageId":"c1"}"#, "invalid_request"),
            ("bool", #"{"text":true,"clientMessageId":"c1"}"#, "invalid_request"),
            ("list", #"{"text":["hi"],"clientMessageId":"c1"}"#, "invalid_request"),
            ("object", #"{"text":{"body":"hi"},"clientMessageId":"c1"}"#, "invalid_request"),
            ("cmid-number", #"{"text":"hi","clientMessageId":5}"#, "invalid_request"),
            ("cmid-empty", #"{"text":"hi","clientMessageId":""}"#, "invalid_client_message_id"),
            ("cmid-101", #"{"text":"hi","clientMessageId":"\#(String(repeating: "x", count: 101))"}"#, "invalid_client_message_id"),
            ("cmid-space", #"{"text":"hi","clientMessageId":"has space"}"#, "invalid_client_message_id"),
            ("cmid-non-ascii", #"{"text":"hi","clientMessageId":"ünïcode"}"#, "invalid_client_message_id"),
            ("array-body", "[]", "invalid_request"),
            ("string-body", #""hi""#, "invalid_request"),
            ("null-body", "null", "invalid_request"),
        ]
        let (alice, _, chatID) = try await Self.pair(app)
        for (name, body, code) in bodies {
            let response = try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: alice, raw: body)
            try response.expectError(.badRequest, code: code, "\(name)")
        }
        #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
    }

    static func sendErrorCodes(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await Self.pair(app)
        let cases: [(String, String, String)] = [
            (String(repeating: "a", count: 4001), "c", "text_too_long"), ("   ", "c", "invalid_text"), ("a\u{0}b", "c", "invalid_text"),
            ("hi", String(repeating: "x", count: 101), "invalid_client_message_id"),
        ]
        for (text, clientMessageID, code) in cases {
            try await Self.post(app, alice, chatID, text: text, clientMessageID: clientMessageID).expectError(.badRequest, code: code)
        }
    }

    static func sendRejectsInvalidJSON(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await Self.pair(app)
        for raw in [#"{"text": "#, "not json", "", #"{"text":"hi"} trailing"#] {
            let response = try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: alice, raw: raw)
            try response.expectError(.badRequest, code: "invalid_request", "\(raw)")
        }
    }

    static func sendWithANonJSONMediaTypeIs415(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await Self.pair(app)
        let response = try await app.request(
            .post,
            "/api/v1/chats/\(chatID)/messages",
            as: alice,
            raw: #"{"text":"hi","clientMessageId":"a"}"#,
            contentType: "text/plain"
        )
        try response.expectError(.unsupportedMediaType, code: "unsupported_media_type")
        #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
    }

    static func aJSONMessageBodyOver64KiBIs413(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await Self.pair(app)
        let response = try await Self.post(app, alice, chatID, text: String(repeating: "a", count: 65 * 1024), clientMessageID: "big-1")
        try response.expectError(.contentTooLarge, code: "payload_too_large")
        #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
    }

    // MARK: History

    static func historyPagesWithBeforeAfterLimitAndHasMore(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await Self.pair(app)
        let empty = try await app.history(bob, chatID)
        #expect((empty["messages"] as? [Any])?.isEmpty == true && empty["hasMore"] as? Bool == false)
        var sent: [[String: Any]] = []
        for index in 0..<10 { sent.append(try await app.send(index % 2 == 1 ? alice : bob, to: chatID, "m\(index + 1)")) }

        let latest = try await app.history(bob, chatID)
        #expect(sameJSON(latest["messages"], sent) && latest["hasMore"] as? Bool == false)

        let pages: [(String, [Int], Bool)] = [
            ("?limit=3", [8, 9, 10], true),
            ("?before=8&limit=3", [5, 6, 7], true),
            ("?before=4&limit=3", [1, 2, 3], false),
            ("?before=1", [], false),
            ("?before=1000", Array(1...10), false),
            // Catching up after a reconnect.
            ("?after=7", [8, 9, 10], false),
            ("?after=2&limit=3", [3, 4, 5], true),
            ("?after=0", Array(1...10), false),
            ("?after=10", [], false),
        ]
        for (query, seqs, hasMore) in pages {
            let page = try await app.history(bob, chatID, query)
            #expect(Shapes.seqs(page) == seqs, "\(query)")
            #expect(page["hasMore"] as? Bool == hasMore, "\(query)")
        }
        #expect(Shapes.seqs(try await app.history(bob, chatID, "?after=2&before=6")) == [3, 4, 5])
        #expect(sameJSON(try await app.history(bob, chatID, "?after=3&limit=1")["messages"], [sent[3]]))
    }

    static func walkingHistoryBackwardsHasNoGaps(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await Self.pair(app)
        for index in 1...55 { try await app.send(alice, to: chatID, "n\(index)") }

        let standard = try await app.history(bob, chatID)
        #expect(Shapes.seqs(standard) == Array(6...55) && standard["hasMore"] as? Bool == true, "the default page is 50")

        var collected: [Int] = []
        var before: Int?
        while true {
            let page = try await app.history(bob, chatID, "?limit=7" + (before.map { "&before=\($0)" } ?? ""))
            collected = Shapes.seqs(page) + collected
            if page["hasMore"] as? Bool != true { break }
            before = Shapes.seqs(page).first
        }
        #expect(collected == Array(1...55))

        var forward: [Int] = []
        var after = 0
        while true {
            let page = try await app.history(bob, chatID, "?after=\(after)&limit=20")
            forward += Shapes.seqs(page)
            if page["hasMore"] as? Bool != true { break }
            after = try #require(Shapes.seqs(page).last)
        }
        #expect(forward == Array(1...55))
    }

    static func historyRejectsBadBounds(_ app: TestApp) async throws {
        let queries: [(String, String)] = [
            ("before=-1", "invalid_seq"), ("after=-1", "invalid_seq"), ("before=x", "invalid_seq"), ("after=abc", "invalid_seq"),
            ("before=1.5", "invalid_seq"), ("after=", "invalid_seq"), ("before=99999999999999999999", "invalid_seq"),
            ("limit=0", "invalid_limit"), ("limit=201", "invalid_limit"), ("limit=x", "invalid_limit"),
        ]
        let (alice, _, chatID) = try await Self.pair(app)
        try await app.send(alice, to: chatID)
        for (query, code) in queries {
            let response = try await app.request(.get, "/api/v1/chats/\(chatID)/messages?\(query)", as: alice)
            try response.expectError(.badRequest, code: code, "\(query)")
        }
    }
}
