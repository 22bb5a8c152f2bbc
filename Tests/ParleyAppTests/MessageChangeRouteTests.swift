import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// What members do with a message after sending it (edit, delete, reply, react, mention) and how clients find messages
/// again (`/changes`, `around`, `/search`), with their hostile cases.
@Suite struct MessageChangeRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.editingChangesTheTextAndTakesTheNextVersion(app)
            try await Self.editsAreRefusedWhereTheyMustBe(app)
            try await Self.deletingLeavesATombstoneAndErasesTheImage(app)
            try await Self.reactionsToggleAndAreBounded(app)
            try await Self.repliesCarryAPreviewOfTheOriginal(app)
            try await Self.mentionsOfMembersCountUntilRead(app)
            try await Self.changesBringAClientUpToDate(app)
            try await Self.aPageAroundAMessage(app)
            try await Self.searchFindsWhatTheCallerCanSee(app)
        }
    }

    static func url(_ chatID: String, _ seq: Int, _ tail: String = "") -> String {
        "/api/v1/chats/\(chatID)/messages/\(seq)\(tail)"
    }

    static func edit(_ app: TestApp, _ session: Session, _ chatID: String, _ seq: Int, _ text: String) async throws -> TestResponse {
        try await app.request(.patch, Self.url(chatID, seq), as: session, json: jsonText(["text": text]))
    }

    static func react(_ app: TestApp, _ session: Session, _ chatID: String, _ seq: Int, _ emoji: String, on: Bool = true) async throws -> TestResponse
    {
        let encoded = emoji.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? emoji
        return try await app.request(on ? .put : .delete, Self.url(chatID, seq, "/reactions/\(encoded)"), as: session)
    }

    /// The message of a `{"message"}` answer, checked for shape.
    static func message(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let body = try response.expectJSON(.ok, sourceLocation: sourceLocation)
        let message = try #require(body["message"] as? [String: Any], sourceLocation: sourceLocation)
        try Shapes.expectMessage(message, sourceLocation: sourceLocation)
        return message
    }

    static func version(_ message: [String: Any]) -> Int { message["version"] as? Int ?? -1 }

    // MARK: Edit

    static func editingChangesTheTextAndTakesTheNextVersion(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        let first = try await app.send(alice, to: chatID, "helo")
        try await app.send(bob, to: chatID, "hi")
        #expect(Self.version(first) == 1)

        let edited = try Self.message(try await Self.edit(app, alice, chatID, 1, "hello"))
        #expect(edited["text"] as? String == "hello" && edited["seq"] as? Int == 1 && edited["id"] as? String == first["id"] as? String)
        #expect(Self.version(edited) == 3, "the third change of the chat")
        #expect(edited["editedAt"] is String)
        // Everyone reads the edited text; the chat's version moved with it, its activity did not.
        let page = try await app.history(bob, chatID)
        #expect((page["messages"] as? [[String: Any]])?.first?["text"] as? String == "hello")
        let chat = try await app.chat(bob, chatID)
        #expect(chat["version"] as? Int == 3)
        // The same text again changes nothing.
        let again = try Self.message(try await Self.edit(app, alice, chatID, 1, "hello"))
        #expect(Self.version(again) == 3)
        #expect(try await app.chat(bob, chatID)["version"] as? Int == 3)
    }

    static func editsAreRefusedWhereTheyMustBe(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        let stranger = try await app.signIn()
        try await app.send(alice, to: chatID, "mine")
        try await Self.edit(app, bob, chatID, 1, "yours now").expectError(.forbidden, code: "not_your_message", "someone else's message")
        try await Self.edit(app, stranger, chatID, 1, "x").expectError(.notFound, code: "chat_not_found", "a chat one is not in")
        let empty = try #require(try await app.createGroup(alice, name: "Quiet", members: [bob])["id"] as? String)
        try await app.request(.delete, Self.url(empty, 1), as: alice).expectError(.notFound, code: "message_not_found", "a chat without messages")
        try await Self.edit(app, alice, chatID, 99, "x").expectError(.notFound, code: "message_not_found", "no such seq")
        try await Self.edit(app, alice, chatID, 1, "").expectError(.badRequest, code: "invalid_text", "empty text")
        try await Self.edit(app, alice, chatID, 1, "   ").expectError(.badRequest, code: "invalid_text", "white space")
        try await Self.edit(app, alice, chatID, 1, String(repeating: "a", count: 4001)).expectError(.badRequest, code: "text_too_long", "4001")
        try await app.request(.patch, "/api/v1/chats/\(chatID)/messages/abc", as: alice, json: #"{"text":"x"}"#)
            .expectError(.badRequest, code: "invalid_seq", "a seq that is not a number")
        try await app.request(.patch, Self.url(chatID, 1), as: alice, json: #"{"text":5}"#)
            .expectError(.badRequest, code: "invalid_request", "text of the wrong type")
        // An image message has no text to edit.
        let image = try FileRouteTests.image(of: try await app.upload(alice, to: chatID, Images.png(width: 2, height: 2), text: "caption"))
        try await Self.edit(app, alice, chatID, image["seq"] as? Int ?? 0, "new caption")
            .expectError(.forbidden, code: "not_editable", "an image message")
        // A deleted message cannot be edited.
        _ = try Self.message(try await app.request(.delete, Self.url(chatID, 1), as: alice))
        try await Self.edit(app, alice, chatID, 1, "back").expectError(.conflict, code: "message_deleted", "a deleted message")
        // Nothing refused moved the chat's version: three changes (two sends, one delete).
        #expect(try await app.chat(alice, chatID)["version"] as? Int == 3)
    }

    // MARK: Delete

    static func deletingLeavesATombstoneAndErasesTheImage(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        try await app.send(alice, to: chatID, "one")
        let image = try FileRouteTests.image(of: try await app.upload(alice, to: chatID, Images.png(width: 3, height: 3), text: "look"))
        let fileURL = try #require((image["image"] as? [String: Any])?["url"] as? String)
        #expect(try await FileRouteTests.fetch(app, fileURL).status == .ok)
        _ = try Self.message(try await Self.react(app, bob, chatID, 2, "👍"))

        try await app.request(.delete, Self.url(chatID, 2), as: bob).expectError(.forbidden, code: "not_your_message", "someone else's")
        let tombstone = try Self.message(try await app.request(.delete, Self.url(chatID, 2), as: alice))
        #expect(tombstone["kind"] as? String == "deleted" && tombstone["seq"] as? Int == 2 && tombstone["id"] as? String == image["id"] as? String)
        #expect(tombstone["text"] == nil && tombstone["image"] == nil && (tombstone["reactions"] as? [Any])?.isEmpty == true)
        #expect(Self.version(tombstone) == 4)
        // Erased, not hidden: the bytes are gone and the link answers 404.
        try await FileRouteTests.fetch(app, fileURL).expectError(.notFound, code: "file_not_found", "an erased image")
        // Deleting again answers the same tombstone and changes nothing.
        let again = try Self.message(try await app.request(.delete, Self.url(chatID, 2), as: alice))
        #expect(sameJSON(again, tombstone))
        // Seqs stay dense: the tombstone keeps its place, and the next message follows it.
        let next = try await app.send(bob, to: chatID, "after")
        #expect(next["seq"] as? Int == 3 && Self.version(next) == 5)
        #expect(Shapes.seqs(try await app.history(bob, chatID)) == [1, 2, 3])
        // A reaction to a deleted message is refused.
        try await Self.react(app, bob, chatID, 2, "🎉").expectError(.conflict, code: "message_deleted", "reacting to a tombstone")
    }

    // MARK: React

    static func reactionsToggleAndAreBounded(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        try await app.send(alice, to: chatID, "react to me")

        var message = try Self.message(try await Self.react(app, bob, chatID, 1, "👍"))
        message = try Self.message(try await Self.react(app, alice, chatID, 1, "👍"))
        message = try Self.message(try await Self.react(app, alice, chatID, 1, "🇫🇷"))
        let reactions = try #require(message["reactions"] as? [[String: Any]])
        #expect(reactions.map { $0["emoji"] as? String } == ["👍", "🇫🇷"])
        #expect(reactions.first?["userIds"] as? [String] == [bob.userID, alice.userID], "in the order people reacted")
        #expect(Self.version(message) == 4)
        // Adding again, or removing what is not there, changes nothing.
        #expect(Self.version(try Self.message(try await Self.react(app, bob, chatID, 1, "👍"))) == 4)
        #expect(Self.version(try Self.message(try await Self.react(app, bob, chatID, 1, "🇫🇷", on: false))) == 4)
        message = try Self.message(try await Self.react(app, bob, chatID, 1, "👍", on: false))
        #expect((message["reactions"] as? [[String: Any]])?.first?["userIds"] as? [String] == [alice.userID] && Self.version(message) == 5)

        // Exactly one emoji grapheme, sequences included; anything else is 400.
        for emoji in ["👩‍💻", "👍🏽", "❤️", "1️⃣", "🏳️‍🌈"] {
            #expect(try await Self.react(app, bob, chatID, 1, emoji).status == .ok, "\(emoji)")
        }
        for word in ["like", "1", "👍👍", "a👍", "©", " ", "👍\u{301}", String(repeating: "👍", count: 40)] {
            try await Self.react(app, alice, chatID, 1, word).expectError(.badRequest, code: "invalid_emoji", "\(word)")
        }
        // One person has at most 10 reactions on one message; the message at most 20 different emoji.
        let emoji = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗"]
        var accepted = 0
        for face in emoji {
            let response = try await Self.react(app, alice, chatID, 1, face)
            if response.status == .ok { accepted += 1 } else { try response.expectError(.conflict, code: "too_many_reactions", face) }
        }
        #expect(accepted == 8, "alice had 2 (👍, 🇫🇷)")
        let stored = try #require((try await app.history(alice, chatID)["messages"] as? [[String: Any]])?.first?["reactions"] as? [[String: Any]])
        #expect(stored.count <= 20 && stored.filter { ($0["userIds"] as? [String])?.contains(alice.userID) == true }.count == 10)
        // Not a member: 404, as everywhere.
        let stranger = try await app.signIn()
        try await Self.react(app, stranger, chatID, 1, "👍").expectError(.notFound, code: "chat_not_found", "a stranger")
        try await Self.react(app, bob, chatID, 7, "👍").expectError(.notFound, code: "message_not_found", "no such seq")
    }

    // MARK: Reply

    static func repliesCarryAPreviewOfTheOriginal(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        let other = try #require(try await app.createGroup(alice, name: "Elsewhere", members: [bob])["id"] as? String)
        let long = String(repeating: "é", count: 250)
        try await app.send(alice, to: chatID, long)
        let body = jsonText(["text": "answer", "clientMessageId": "reply-1", "replyToSeq": 1])
        let reply = try #require(
            try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: bob, json: body).expectJSON(.created)["message"] as? [String: Any]
        )
        let preview = try #require(reply["replyTo"] as? [String: Any])
        #expect(preview["seq"] as? Int == 1 && preview["senderId"] as? String == alice.userID && preview["kind"] as? String == "text")
        #expect((preview["text"] as? String)?.count == 200, "cut to 200 characters")

        // Only a message of the same chat, which is still there.
        for (chat, seq, code) in [(other, 1, "message_not_found"), (chatID, 50, "message_not_found")] {
            let json = jsonText(["text": "x", "replyToSeq": seq])
            try await app.request(.post, "/api/v1/chats/\(chat)/messages", as: bob, json: json).expectError(.notFound, code: code, "\(seq)")
        }
        try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: bob, json: jsonText(["text": "x", "replyToSeq": -1]))
            .expectError(.badRequest, code: "invalid_seq", "a negative seq")
        _ = try Self.message(try await app.request(.delete, Self.url(chatID, 1), as: alice))
        try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: bob, json: jsonText(["text": "x", "replyToSeq": 1]))
            .expectError(.conflict, code: "message_deleted", "replying to a deleted message")
        // The reply shows the original as it is now: gone.
        let messages = try #require(try await app.history(bob, chatID)["messages"] as? [[String: Any]])
        let shown = try #require(messages.last?["replyTo"] as? [String: Any])
        #expect(shown["kind"] as? String == "deleted" && shown["text"] == nil)
        #expect(Shapes.seqs(try await app.history(bob, chatID)) == [1, 2], "refused replies took no seq")
    }

    // MARK: Mention

    static func mentionsOfMembersCountUntilRead(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 4)
        let (alice, bob, carol, stranger) = (people[0], people[1], people[2], people[3])
        let chatID = try #require(try await app.createGroup(alice, name: "Team", members: [bob, carol])["id"] as? String)
        let text = "<@\(bob.userID)> and <@\(stranger.userID)> and <@\(bob.userID)> and <@not-an-id>"
        let message = try await app.send(alice, to: chatID, text)
        #expect(message["mentions"] as? [String] == [bob.userID], "members only, once each")
        #expect(message["text"] as? String == text, "the text stays as written")
        try await app.send(alice, to: chatID, "no mention")
        #expect(try await app.chat(bob, chatID)["mentionCount"] as? Int == 1)
        #expect(try await app.chat(carol, chatID)["mentionCount"] as? Int == 0)
        // An edit that mentions Carol instead moves the mention.
        let edited = try Self.message(try await Self.edit(app, alice, chatID, 1, "now <@\(carol.userID)>"))
        #expect(edited["mentions"] as? [String] == [carol.userID])
        #expect(try await app.chat(bob, chatID)["mentionCount"] as? Int == 0)
        #expect(try await app.chat(carol, chatID)["mentionCount"] as? Int == 1)
        // Reading past it clears the count.
        try await app.markRead(carol, chatID, seq: "2").expectNoContent()
        #expect(try await app.chat(carol, chatID)["mentionCount"] as? Int == 0)
    }

    // MARK: Catching up

    static func changesBringAClientUpToDate(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        for index in 1...4 { try await app.send(alice, to: chatID, "m\(index)") }
        let seen = 4
        // While Bob is away: an edit, a delete, a reaction and a new message.
        _ = try Self.message(try await Self.edit(app, alice, chatID, 1, "m1 edited"))
        _ = try Self.message(try await app.request(.delete, Self.url(chatID, 2), as: alice))
        _ = try Self.message(try await Self.react(app, alice, chatID, 3, "🎉"))
        try await app.send(alice, to: chatID, "m5")

        let changes = try await app.request(.get, "/api/v1/chats/\(chatID)/changes?after=\(seen)", as: bob).expectJSON(.ok)
        #expect(Set(changes.keys) == ["messages", "version", "hasMore"])
        let messages = try #require(changes["messages"] as? [[String: Any]])
        for message in messages { try Shapes.expectMessage(message) }
        #expect(messages.map { $0["seq"] as? Int } == [1, 2, 3, 5])
        #expect(messages.map(Self.version) == [5, 6, 7, 8])
        #expect(changes["version"] as? Int == 8 && changes["hasMore"] as? Bool == false)
        // Applied to what Bob had, it is the chat as it is now.
        #expect(messages[0]["text"] as? String == "m1 edited" && messages[1]["kind"] as? String == "deleted")

        // In pages: each page's version is where to go on from.
        let first = try await app.request(.get, "/api/v1/chats/\(chatID)/changes?after=\(seen)&limit=2", as: bob).expectJSON(.ok)
        #expect(first["hasMore"] as? Bool == true && first["version"] as? Int == 6)
        let second = try await app.request(.get, "/api/v1/chats/\(chatID)/changes?after=6&limit=2", as: bob).expectJSON(.ok)
        #expect(Shapes.seqs(second) == [3, 5] && second["version"] as? Int == 8 && second["hasMore"] as? Bool == false)
        // Up to date: nothing, and the same version; from 0: every message once.
        let none = try await app.request(.get, "/api/v1/chats/\(chatID)/changes?after=8", as: bob).expectJSON(.ok)
        #expect((none["messages"] as? [Any])?.isEmpty == true && none["version"] as? Int == 8)
        let all = try await app.request(.get, "/api/v1/chats/\(chatID)/changes", as: bob).expectJSON(.ok)
        #expect(Set(Shapes.seqs(all)) == [1, 2, 3, 4, 5] && Shapes.seqs(all).count == 5)

        let stranger = try await app.signIn()
        try await app.request(.get, "/api/v1/chats/\(chatID)/changes?after=0", as: stranger).expectError(
            .notFound,
            code: "chat_not_found",
            "stranger"
        )
        for bad in ["-1", "x", "1.5"] {
            try await app.request(.get, "/api/v1/chats/\(chatID)/changes?after=\(bad)", as: bob).expectError(.badRequest, code: "invalid_seq", bad)
        }
        try await app.request(.get, "/api/v1/chats/\(chatID)/changes?limit=0", as: bob).expectError(.badRequest, code: "invalid_limit", "limit 0")
    }

    static func aPageAroundAMessage(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        for index in 1...30 { try await app.send(index % 2 == 0 ? alice : bob, to: chatID, "m\(index)") }
        let page = try await app.request(.get, "/api/v1/chats/\(chatID)/messages?around=15&limit=10", as: bob).expectJSON(.ok)
        #expect(Set(page.keys) == ["messages", "hasMore", "hasMoreAfter"])
        #expect(Shapes.seqs(page) == Array(10...19))
        #expect(page["hasMore"] as? Bool == true && page["hasMoreAfter"] as? Bool == true)
        let start = try await app.request(.get, "/api/v1/chats/\(chatID)/messages?around=2&limit=10", as: bob).expectJSON(.ok)
        // Fewer older ones than half a page: the rest of the page is newer ones.
        #expect(Shapes.seqs(start) == Array(1...10) && start["hasMore"] as? Bool == false)
        let end = try await app.request(.get, "/api/v1/chats/\(chatID)/messages?around=30&limit=10", as: bob).expectJSON(.ok)
        #expect(Shapes.seqs(end) == Array(25...30) && end["hasMoreAfter"] as? Bool == false)
        try await app.request(.get, "/api/v1/chats/\(chatID)/messages?around=5&after=2", as: bob)
            .expectError(.badRequest, code: "invalid_request", "around with after")
    }

    // MARK: Search

    static func searchFindsWhatTheCallerCanSee(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (alice, bob, carol) = (people[0], people[1], people[2])
        let shared = try await app.directChat(alice, with: bob)
        let private_ = try await app.directChat(bob, with: carol)
        try await app.send(alice, to: shared, "🎉 Quokka party tonight")
        try await app.send(bob, to: shared, "quokkas are great")
        try await app.send(bob, to: private_, "secret quokka plans")
        try await app.send(alice, to: shared, "typo here")
        _ = try Self.message(try await Self.edit(app, alice, shared, 3, "wombat here"))
        try await app.send(alice, to: shared, "quokka to delete")
        _ = try Self.message(try await app.request(.delete, Self.url(shared, 4), as: alice))

        // Whole words; a word written with `*` after it matches the words that start with it.
        #expect(try await Self.searchTexts(app, alice, "q=quokka") == ["🎉 Quokka party tonight"])
        #expect(try await Self.searchTexts(app, alice, "q=quok").isEmpty)
        let found = try await app.request(.get, "/api/v1/search?q=quok*", as: alice).expectJSON(.ok)
        #expect(Set(found.keys) == ["results", "nextCursor"] || Set(found.keys) == ["results"])
        let results = try #require(found["results"] as? [[String: Any]])
        let texts = results.compactMap { ($0["message"] as? [String: Any])?["text"] as? String }
        #expect(texts == ["quokkas are great", "🎉 Quokka party tonight"], "newest first; never Carol's chat, never the deleted one")
        // Highlights are UTF-16 ranges: the party emoji is two code units and a space before the word.
        let highlights = try #require(results.last?["highlights"] as? [[String: Int]])
        #expect(highlights.map { [$0["start"], $0["end"]] } == [[3, 9]])
        #expect(results.first.flatMap { $0["highlights"] as? [[String: Int]] }?.map { [$0["start"], $0["end"]] } == [[0, 7]])
        // A whole word marks only itself, not longer words that start with it.
        try await app.send(alice, to: shared, "quokka quokkas")
        let marked = try await app.request(.get, "/api/v1/search?q=quokka&limit=1", as: alice).expectJSON(.ok)
        let marks = (marked["results"] as? [[String: Any]])?.first?["highlights"] as? [[String: Int]]
        #expect(marks?.map { [$0["start"], $0["end"]] } == [[0, 6]])

        // Case is folded by Unicode's rules on both databases, whatever the server's locale.
        try await app.send(bob, to: private_, "Встреча в ПЯТНИЦУ, CRÈME brûlée")
        #expect(try await Self.searchTexts(app, carol, "q=%D0%BF%D1%8F%D1%82%D0%BD%D0%B8%D1%86*%20cr%C3%A8me") == ["Встреча в ПЯТНИЦУ, CRÈME brûlée"])
        // Edited text is searched as edited.
        #expect(try await Self.searchTexts(app, alice, "q=wombat") == ["wombat here"])
        #expect(try await Self.searchTexts(app, alice, "q=typo").isEmpty)
        // Every word must match; within one chat; pages with a cursor.
        #expect(try await Self.searchTexts(app, alice, "q=quokka%20party") == ["🎉 Quokka party tonight"])
        #expect(try await Self.searchTexts(app, bob, "q=quokka&chatId=\(private_)") == ["secret quokka plans"])
        // After "quokka quokkas": in all Bob's chats, and in the one with Alice.
        for (scope, expected) in [
            ("", ["secret quokka plans", "quokkas are great", "🎉 Quokka party tonight"]),
            ("&chatId=\(shared)", ["quokkas are great", "🎉 Quokka party tonight"]),
        ] {
            let page = try await app.request(.get, "/api/v1/search?q=quok*&limit=1\(scope)", as: bob).expectJSON(.ok)
            #expect(Self.texts(page) == ["quokka quokkas"])
            let cursor = try #require(page["nextCursor"] as? String)
            #expect(try await Self.searchTexts(app, bob, "q=quok*&limit=5&cursor=\(cursor)\(scope)") == expected, "\(scope)")
        }
        try await app.request(.get, "/api/v1/search?q=quokka&cursor=\(OpaqueCursor.encode(["k": "x"]))", as: bob)
            .expectError(.badRequest, code: "invalid_cursor", "a cursor that is not one of a search's")

        try await app.request(.get, "/api/v1/search?q=quokka&chatId=\(private_)", as: alice)
            .expectError(.notFound, code: "chat_not_found", "a chat one is not in")
        for bad in ["q=", "q=%20%2B%2A", String("q=" + String(repeating: "a", count: 201))] {
            try await app.request(.get, "/api/v1/search?\(bad)", as: alice).expectError(.badRequest, code: "invalid_query", bad)
        }
        try await app.request(.get, "/api/v1/search", as: alice).expectError(.badRequest, code: "invalid_query", "no q")
        // Query syntax of either engine is only ever words.
        #expect(try await Self.searchTexts(app, alice, "q=%22quokka%22%20OR%20NEAR(x)").isEmpty)
        #expect(try await Self.searchTexts(app, alice, "q=quokka%27%3B%20DROP%20TABLE%20messages%3B--").isEmpty)
    }

    static func searchTexts(_ app: TestApp, _ session: Session, _ query: String) async throws -> [String] {
        Self.texts(try await app.request(.get, "/api/v1/search?\(query)", as: session).expectJSON(.ok))
    }

    /// The texts of a page of search results.
    static func texts(_ page: [String: Any]) -> [String] {
        (page["results"] as? [[String: Any]] ?? []).compactMap { ($0["message"] as? [String: Any])?["text"] as? String }
    }
}
