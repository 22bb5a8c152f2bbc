import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// `POST /chats` (direct and group), `GET /chats` (the list and its pages) and `GET /chats/{id}`.
@Suite struct ChatRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database: building an application
    /// and its database costs more than most behaviours, and the sign-ins of all of them pass the per-address limit.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.aDirectChatIsCreatedOnceAndFoundFromBothSides(app)
            try await Self.aDirectChatWithYourselfIs400(app)
            try await Self.aDirectChatWithAnUnknownUserIs404(app)
            try await Self.createChatRejectsMalformedBodies(app)
            try await Self.createChatRejectsInvalidJSON(app)
            try await Self.createChatWithANonJSONMediaTypeIs415(app)
            try await Self.aGroupIncludesItsCreatorAndCollapsesDuplicates(app)
            try await Self.groupsAreNotDeduplicatedLikeDirectChats(app)
            try await Self.groupNamesOf1To100CharactersAreKeptVerbatim(app)
            try await Self.groupNamesThatAreEmptyTooLongOrWithControlCharactersAre400(app)
            try await Self.aGroupWithAnUnknownMemberIs404(app)
            try await Self.aGroupWithoutAnotherMemberIs400(app)
            try await Self.theChatListIsNewestActivityFirst(app)
            try await Self.theChatListCarriesLastMessageUnreadCountAndReadState(app)
            try await Self.theChatListShowsMembersPublicProfilesWithoutEmails(app)
            try await Self.theChatListPagesWithLimitAndNextCursor(app)
            try await Self.theChatListRejectsABadLimit(app)
            try await Self.theChatListAcceptsLimits1And200(app)
            try await Self.theChatListRejectsAGarbageCursor(app)
            try await Self.getChatAnswersMembersOnly(app)
            try await Self.getAnUnknownChatIs404(app)
        }
    }

    // MARK: Direct chats

    static func aDirectChatIsCreatedOnceAndFoundFromBothSides(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (alice, bob) = (people[0], people[1])

        let created = try await app.openDirect(alice, with: bob, status: .created)
        let again = try await app.openDirect(alice, with: bob, status: .ok)
        let fromBob = try await app.openDirect(bob, with: alice, status: .ok)

        #expect(created["kind"] as? String == "direct" && (created["name"] == nil || created["name"] is NSNull))
        let members = (created["members"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(Set(members) == [alice.userID, bob.userID])
        let id = try #require(created["id"] as? String)
        #expect(again["id"] as? String == id && fromBob["id"] as? String == id)
        #expect(created["unreadCount"] as? Int == 0 && (created["lastMessage"] == nil || created["lastMessage"] is NSNull))
        #expect(Shapes.readState(created) == [alice.userID: 0, bob.userID: 0])
        #expect(try await app.chatIDs(alice) == [id])
        #expect(try await app.chatIDs(bob) == [id])
    }

    static func aDirectChatWithYourselfIs400(_ app: TestApp) async throws {
        let alice = try await app.signIn()
        let response = try await app.request(.post, "/api/v1/chats", as: alice, json: #"{"userId":\#(quoted(alice.userID))}"#)
        try response.expectError(.badRequest, code: "invalid_members")
        #expect(try await app.chatIDs(alice) == [])
    }

    static func aDirectChatWithAnUnknownUserIs404(_ app: TestApp) async throws {
        let ids = [unknownID, UUID().uuidString.lowercased(), "not-an-id", "../../etc/passwd", "' OR 1=1 --", String(repeating: "x", count: 300)]
        let alice = try await app.signIn()
        for id in ids {
            let response = try await app.request(.post, "/api/v1/chats", as: alice, json: jsonText(["userId": id]))
            try response.expectError(.notFound, code: "user_not_found", "\(id)")
        }
    }

    static func createChatRejectsMalformedBodies(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (alice, bob) = (people[0], people[1])
        let bobID = quoted(bob.userID)
        let payloads: [(String, String, String)] = [
            ("both", #"{"userId":\#(bobID),"name":"Team","memberIds":[\#(bobID)]}"#, "invalid_chat"),
            ("userId-and-name", #"{"userId":\#(bobID),"name":"Team"}"#, "invalid_chat"),
            ("userId-and-memberIds", #"{"userId":\#(bobID),"memberIds":[\#(bobID)]}"#, "invalid_chat"),
            ("empty", "{}", "invalid_chat"),
            ("name-only", #"{"name":"Lonely name"}"#, "invalid_chat"),
            ("memberIds-only", #"{"memberIds":[]}"#, "invalid_chat"),
            ("userId-number", #"{"userId":5}"#, "invalid_request"),
            ("all-null", #"{"userId":null,"name":null,"memberIds":null}"#, "invalid_chat"),
            ("userId-list", #"{"userId":["x"]}"#, "invalid_request"),
            ("userId-object", #"{"userId":{"id":"x"}}"#, "invalid_request"),
            ("name-number", #"{"name":5,"memberIds":[]}"#, "invalid_request"),
            ("memberIds-string", #"{"name":"Team","memberIds":"abc"}"#, "invalid_request"),
            ("memberIds-numbers", #"{"name":"Team","memberIds":[1,2]}"#, "invalid_request"),
            ("name-list", #"{"name":["Team"],"memberIds":[]}"#, "invalid_request"),
            ("array-body", "[]", "invalid_request"),
            ("string-body", #""userId""#, "invalid_request"),
            ("null-body", "null", "invalid_request"),
        ]
        for (name, payload, code) in payloads {
            let response = try await app.request(.post, "/api/v1/chats", as: alice, raw: payload)
            try response.expectError(.badRequest, code: code, "\(name)")
        }
        #expect(try await app.chatIDs(alice) == [])
        #expect(try await app.chatIDs(bob) == [])
    }

    static func createChatRejectsInvalidJSON(_ app: TestApp) async throws {
        let alice = try await app.signIn()
        for raw in [#"{"userId": "#, "not json", "", #"{"userId": "x"} trailing"#] {
            let response = try await app.request(.post, "/api/v1/chats", as: alice, raw: raw)
            try response.expectError(.badRequest, code: "invalid_request", "\(raw)")
        }
    }

    static func createChatWithANonJSONMediaTypeIs415(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (alice, bob) = (people[0], people[1])
        for contentType in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", nil] {
            let response = try await app.request(
                .post,
                "/api/v1/chats",
                as: alice,
                raw: #"{"userId":\#(quoted(bob.userID))}"#,
                contentType: contentType
            )
            try response.expectError(.unsupportedMediaType, code: "unsupported_media_type", "\(contentType ?? "none")")
        }
        #expect(try await app.chatIDs(alice) == [])
    }

    // MARK: Groups

    static func aGroupIncludesItsCreatorAndCollapsesDuplicates(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (alice, bob, carol) = (people[0], people[1], people[2])
        let ids = [bob.userID, carol.userID, bob.userID, alice.userID, carol.userID]
        try await app.introduce(alice, to: [bob, carol])

        let body = try await app.request(.post, "/api/v1/chats", as: alice, json: jsonText(["name": "  Weekend plans  ", "memberIds": ids]))
            .expectJSON(.created)

        let chat = try #require(body["chat"] as? [String: Any])
        try Shapes.expectChatSummary(chat)
        #expect(chat["kind"] as? String == "group" && chat["name"] as? String == "Weekend plans")
        let members = (chat["members"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(members.sorted() == [alice.userID, bob.userID, carol.userID].sorted())
        #expect(Shapes.readState(chat) == [alice.userID: 0, bob.userID: 0, carol.userID: 0])
        let id = try #require(chat["id"] as? String)
        for person in people {
            #expect(try await app.chat(person, id)["id"] as? String == id)
            #expect(try await app.chatIDs(person).first == id)
        }
    }

    static func groupsAreNotDeduplicatedLikeDirectChats(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let first = try await app.createGroup(people[0], name: "Same name", members: [people[1]])
        let second = try await app.createGroup(people[0], name: "Same name", members: [people[1]])
        #expect(first["id"] as? String != second["id"] as? String)
    }

    static func groupNamesOf1To100CharactersAreKeptVerbatim(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        // The zero width joiner makes one emoji of several: it stays allowed.
        for name in [String(repeating: "x", count: 100), String(repeating: "é", count: 100), "🎉 party", "👩\u{200D}💻 devs", xss] {
            let chat = try await app.createGroup(people[0], name: name, members: [people[1]])
            #expect(chat["name"] as? String == name)
            #expect(try await app.chat(people[1], try #require(chat["id"] as? String))["name"] as? String == name)
        }
    }

    static func groupNamesThatAreEmptyTooLongOrWithControlCharactersAre400(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let direct = try await app.introduce(people[0], to: [people[1]])
        // Bidi overrides, embeddings, isolates and marks, and other invisible format characters (Unicode Cf), as in
        // display names: "\u{202E}gnp.exe" shows as "exe.png".
        let hidden = [
            "\u{202E}gnp.exe", "a\u{202A}b", "\u{2066}team\u{2069}", "\u{2067}x", "\u{2068}x", "mark\u{200E}", "mark\u{200F}", "zero\u{200B}width",
        ]
        for name in ["", "   ", String(repeating: "x", count: 101), "bad\u{0}name", "bad\u{7}name", "two\nlines"] + hidden {
            let json = jsonText(["name": name, "memberIds": [people[1].userID]])
            let response = try await app.request(.post, "/api/v1/chats", as: people[0], json: json)
            try response.expectError(.badRequest, code: "invalid_name", "\(name.debugDescription)")
        }
        #expect(try await app.chatIDs(people[0]) == direct)
        #expect(try await app.chatIDs(people[1]) == direct)
    }

    static func aGroupWithAnUnknownMemberIs404(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let direct = try await app.introduce(people[0], to: [people[1]])
        for bad in [unknownID, "not-an-id"] {
            let json = jsonText(["name": "Team", "memberIds": [people[1].userID, bad]])
            let response = try await app.request(.post, "/api/v1/chats", as: people[0], json: json)
            try response.expectError(.notFound, code: "user_not_found", "\(bad)")
        }
        #expect(try await app.chatIDs(people[0]) == direct)
        #expect(try await app.chatIDs(people[1]) == direct)
    }

    static func aGroupWithoutAnotherMemberIs400(_ app: TestApp) async throws {
        let alice = try await app.signIn()
        for ids in [[], [alice.userID], [alice.userID, alice.userID]] {
            let response = try await app.request(.post, "/api/v1/chats", as: alice, json: jsonText(["name": "Just me", "memberIds": ids]))
            try response.expectError(.badRequest, code: "invalid_members", "\(ids)")
        }
        #expect(try await app.chatIDs(alice) == [])
    }

    // MARK: The chat list

    /// Activity times are milliseconds: waiting a little makes the next one surely later.
    static func tick() async throws {
        try await Task.sleep(for: .milliseconds(10))
    }

    static func theChatListIsNewestActivityFirst(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 4)
        let (me, x, y, z) = (people[0], people[1], people[2], people[3])
        var chats: [String] = []
        for other in [x, y, z] {
            chats.append(try #require(try await app.openDirect(me, with: other, status: .created)["id"] as? String))
            try await Self.tick()
        }
        #expect(try await app.chatIDs(me) == chats.reversed())

        try await app.send(x, to: chats[0], "back to the oldest chat")

        #expect(try await app.chatIDs(me) == [chats[0], chats[2], chats[1]])
        try await Self.tick()
        try await app.send(me, to: chats[1], "and now the middle one")
        #expect(try await app.chatIDs(me) == [chats[1], chats[0], chats[2]])
        // Opening an existing direct chat again is not activity.
        try await Self.tick()
        try await app.openDirect(me, with: z, status: .ok)
        #expect(try await app.chatIDs(me) == [chats[1], chats[0], chats[2]])
    }

    static func theChatListCarriesLastMessageUnreadCountAndReadState(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (alice, bob) = (people[0], people[1])
        let chatID = try await app.directChat(alice, with: bob)
        var last: [String: Any] = [:]
        for index in 1...3 { last = try await app.send(alice, to: chatID, "message \(index)") }

        func only(_ session: Session) async throws -> [String: Any] {
            let chats = try #require(try await app.chatPage(session)["chats"] as? [[String: Any]])
            try #require(chats.count == 1)
            return chats[0]
        }
        var forBob = try await only(bob)
        let forAlice = try await only(alice)

        #expect(sameJSON(forBob["lastMessage"], last) && sameJSON(forAlice["lastMessage"], last))
        #expect(forBob["unreadCount"] as? Int == 3)
        #expect(forAlice["unreadCount"] as? Int == 0, "a sender has read their own messages")
        #expect(Shapes.readState(forBob) == [alice.userID: 3, bob.userID: 0])

        try await app.markRead(bob, chatID, seq: "2").expectNoContent()

        forBob = try await only(bob)
        #expect(forBob["unreadCount"] as? Int == 1)
        #expect(Shapes.readState(forBob) == [alice.userID: 3, bob.userID: 2])
        #expect(Shapes.readState(try await only(alice)) == [alice.userID: 3, bob.userID: 2])
        #expect(sameJSON(try await app.chat(bob, chatID), forBob))
    }

    static func theChatListShowsMembersPublicProfilesWithoutEmails(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (alice, bob, carol) = (people[0], people[1], people[2])
        _ = try await app.request(.patch, "/api/v1/me", as: bob, json: #"{"name":"Bob Builder"}"#).expectJSON(.ok)
        let aliceName = try await app.request(.get, "/api/v1/me", as: alice).expectJSON(.ok)["name"] as? String
        try await app.createGroup(alice, name: "Profiles", members: [bob, carol])
        try await app.openDirect(alice, with: bob)

        let response = try await app.request(.get, "/api/v1/chats", as: alice)

        let body = try response.expectJSON(.ok)
        for person in people { #expect(!response.text.contains(person.email), "\(person.email) leaked in the chat list") }
        let chats = try #require(body["chats"] as? [[String: Any]])
        #expect(chats.count == 3, "the group and the direct chats with Bob and Carol")
        for chat in chats {
            var names: [String: String] = [:]
            for member in chat["members"] as? [[String: Any]] ?? [] {
                var profile = member
                profile["role"] = nil
                Shapes.expectPublicUser(profile)
                names[member["id"] as? String ?? ""] = member["name"] as? String
            }
            if chat["kind"] as? String == "group" { #expect(names[bob.userID] == "Bob Builder") }
            #expect(names[alice.userID] == aliceName)
        }
    }

    static func theChatListPagesWithLimitAndNextCursor(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (me, other) = (people[0], people[1])
        var created: [String] = []
        for index in 0..<7 {
            created.append(try #require(try await app.createGroup(me, name: "Group \(index)", members: [other])["id"] as? String))
        }
        try await Self.tick()  // later than every creation, so the moved chat is surely first
        try await app.send(other, to: created[2], "activity in the middle")
        let everything = try await app.chatIDs(me)
        let direct = try await app.directChat(me, with: other)
        #expect(everything.sorted() == (created + [direct]).sorted())

        var seen: [String] = []
        var cursor: String?
        var pages = 0
        while true {
            let page = try await app.chatPage(me, cursor.map { query(["limit": "3", "cursor": $0]) } ?? "?limit=3")
            pages += 1
            let chats = page["chats"] as? [[String: Any]] ?? []
            #expect(chats.count <= 3)
            seen += chats.compactMap { $0["id"] as? String }
            cursor = page["nextCursor"] as? String
            if cursor == nil { break }
            try #require(pages < 10, "the cursor never ends")
        }

        #expect(pages == 3)
        #expect(seen == everything, "pages must walk the same order as one big page, without gaps or duplicates")
        #expect(Set(seen).count == seen.count && seen.count == 8)
        #expect(seen.first == created[2])
        // Exactly a page: the next page is then empty.
        let firstSix = try await app.chatPage(me, "?limit=6")
        #expect((firstSix["chats"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } == Array(everything.prefix(6)))
        let next = try #require(firstSix["nextCursor"] as? String)
        let rest = try await app.chatPage(me, query(["limit": "6", "cursor": next]))
        #expect((rest["chats"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } == Array(everything.dropFirst(6)))
        #expect(rest["nextCursor"] == nil || rest["nextCursor"] is NSNull)
        // The default limit (50) holds all seven, with no cursor.
        let all = try await app.chatPage(me)
        #expect((all["chats"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } == everything)
        #expect(all["nextCursor"] == nil || all["nextCursor"] is NSNull)
    }

    static func theChatListRejectsABadLimit(_ app: TestApp) async throws {
        let alice = try await app.signIn()
        for limit in ["0", "201", "x", "-1", "1.5", ""] {
            let response = try await app.request(.get, "/api/v1/chats?limit=\(limit)", as: alice)
            try response.expectError(.badRequest, code: "invalid_limit", "\(limit)")
        }
    }

    static func theChatListAcceptsLimits1And200(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        try await app.openDirect(people[0], with: people[1])
        for limit in ["1", "200"] {
            #expect((try await app.chatPage(people[0], "?limit=\(limit)")["chats"] as? [Any])?.count == 1)
        }
    }

    static func theChatListRejectsAGarbageCursor(_ app: TestApp) async throws {
        func base64URL(_ text: String) -> String { CompactJWT.base64URL(Data(text.utf8)) }
        let cursors = [
            "garbage", "!!!!", base64URL("not json"), base64URL(#"{"u":"yesterday","i":5}"#), base64URL("[1,2]"), String(repeating: "A", count: 600),
        ]
        let alice = try await app.signIn()
        for cursor in cursors {
            let response = try await app.request(.get, "/api/v1/chats\(query(["cursor": cursor]))", as: alice)
            try response.expectError(.badRequest, code: "invalid_cursor", "\(cursor)")
        }
    }

    // MARK: One chat

    static func getChatAnswersMembersOnly(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (alice, bob, mallory) = (people[0], people[1], people[2])
        let chat = try await app.createGroup(alice, name: "Private", members: [bob])
        let id = try #require(chat["id"] as? String)

        #expect(try await app.chat(bob, id)["id"] as? String == id)
        #expect(sameJSON(try await app.chat(alice, id), chat))

        try await app.request(.get, "/api/v1/chats/\(id)", as: mallory).expectError(.notFound, code: "chat_not_found")
    }

    static func getAnUnknownChatIs404(_ app: TestApp) async throws {
        let alice = try await app.signIn()
        for id in [unknownID, UUID().uuidString.lowercased(), "not-an-id", "%27%20OR%201%3D1"] {
            let response = try await app.request(.get, "/api/v1/chats/\(id)", as: alice)
            try response.expectError(.notFound, code: "chat_not_found", "\(id)")
        }
    }
}
