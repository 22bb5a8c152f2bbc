import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// Groups people manage (rename, photo, members, roles, leaving) and blocks, with their hostile cases: members and admins
/// reaching past their role, admins of one group acting on another, strangers, direct chats, sizes, blocked people.
@Suite struct GroupRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.theCreatorOwnsTheGroupAndEveryChangeIsASystemMessage(app)
            try await Self.membersCannotManageAndAdminsCannotReachPastTheirRole(app)
            try await Self.anAdminOfOneGroupHasNoStandingInAnother(app)
            try await Self.strangersAreAnsweredAsIfTheGroupDidNotExist(app)
            try await Self.directChatsHaveNothingToManage(app)
            try await Self.onlyPeopleOneSharesAChatWithCanBeAdded(app)
            try await Self.inputsAreCheckedForShapeAndSize(app)
            try await Self.theOwnerHandsOwnershipOver(app)
            try await Self.theLastOwnerLeavingHandsOwnershipToTheLongestStandingAdminOrMember(app)
            try await Self.aRemovedMemberLosesTheChatAndCannotWrite(app)
            try await Self.aGroupPhotoIsAnImageTheSetterUploaded(app)
            try await Self.blockingIsInvisibleToTheBlockedPerson(app)
            try await Self.blockedPeopleCannotBeAddedEitherWay(app)
            try await Self.someoneWhoTurnedGroupAddsOffCannotBeAddedAndABlockLooksTheSame(app)
            try await Self.blockRoutesRefuseNonsense(app)
        }
    }

    // MARK: Helpers

    static func group(_ app: TestApp, _ owner: Session, _ members: [Session], name: String = "Team") async throws -> String {
        try #require(try await app.createGroup(owner, name: name, members: members)["id"] as? String)
    }

    static func patch(_ app: TestApp, _ session: Session, _ chatID: String, _ body: [String: Any]) async throws -> TestResponse {
        try await app.request(.patch, "\(api)/chats/\(chatID)", as: session, json: jsonText(body))
    }

    static func add(_ app: TestApp, _ session: Session, _ chatID: String, _ people: [Session]) async throws -> TestResponse {
        try await app.request(.post, "\(api)/chats/\(chatID)/members", as: session, json: jsonText(["userIds": people.map(\.userID)]))
    }

    static func remove(_ app: TestApp, _ session: Session, _ chatID: String, _ member: Session) async throws -> TestResponse {
        try await app.request(.delete, "\(api)/chats/\(chatID)/members/\(member.userID)", as: session)
    }

    static func setRole(_ app: TestApp, _ session: Session, _ chatID: String, _ member: Session, _ role: String) async throws -> TestResponse {
        try await app.request(.put, "\(api)/chats/\(chatID)/members/\(member.userID)/role", as: session, json: jsonText(["role": role]))
    }

    /// A ChatSummary answer, checked for shape.
    static func summary(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let chat = try response.expectJSON(.ok, sourceLocation: sourceLocation)
        try Shapes.expectChatSummary(chat, sourceLocation: sourceLocation)
        return chat
    }

    /// Each member's role, by id.
    static func roles(_ chat: [String: Any]) -> [String: String] {
        var roles: [String: String] = [:]
        for member in chat["members"] as? [[String: Any]] ?? [] {
            if let id = member["id"] as? String { roles[id] = member["role"] as? String }
        }
        return roles
    }

    /// The system messages of a chat as `session` reads them: (action, actorId, userIds, name, role).
    static func systemMessages(_ app: TestApp, _ session: Session, _ chatID: String) async throws -> [[String: Any]] {
        let page = try await app.history(session, chatID, "?limit=200")
        return (page["messages"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "system" }.compactMap { $0["system"] as? [String: Any] }
    }

    // MARK: Roles and system messages

    static func theCreatorOwnsTheGroupAndEveryChangeIsASystemMessage(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 4)
        let (ann, ben, cat, dan) = (people[0], people[1], people[2], people[3])
        let chatID = try await Self.group(app, ann, [ben, cat])
        let created = try await app.chat(ann, chatID)
        #expect(Self.roles(created) == [ann.userID: "owner", ben.userID: "member", cat.userID: "member"])

        let renamed = try Self.summary(try await Self.patch(app, ann, chatID, ["name": "  Launch crew  "]))
        #expect(renamed["name"] as? String == "Launch crew")
        try await app.send(ben, to: chatID, "nice name")
        let promoted = try Self.summary(try await Self.setRole(app, ann, chatID, ben, "admin"))
        #expect(Self.roles(promoted)[ben.userID] == "admin")
        // An admin adds someone they share a chat with; the new member sees the whole history and one unread message.
        try await app.introduce(ben, to: [dan])
        let grown = try Self.summary(try await Self.add(app, ben, chatID, [dan]))
        #expect(Self.roles(grown)[dan.userID] == "member")
        let forDan = try await app.chat(dan, chatID)
        #expect(forDan["unreadCount"] as? Int == 1)
        #expect(try await app.chatIDs(dan).first == chatID)

        let page = try await app.history(dan, chatID)
        let messages = page["messages"] as? [[String: Any]] ?? []
        #expect(Shapes.seqs(page) == [1, 2, 3, 4], "each change took its own seq between the messages")
        #expect(messages.map { $0["kind"] as? String ?? "" } == ["system", "text", "system", "system"])
        #expect(messages.map { $0["version"] as? Int ?? 0 } == [1, 2, 3, 4])
        let system = messages.compactMap { $0["system"] as? [String: Any] }
        #expect(system[0]["action"] as? String == "renamed" && system[0]["name"] as? String == "Launch crew")
        #expect(system[0]["actorId"] as? String == ann.userID)
        #expect(system[1]["action"] as? String == "role" && system[1]["role"] as? String == "admin")
        #expect(system[1]["userIds"] as? [String] == [ben.userID])
        #expect(system[2]["action"] as? String == "added" && system[2]["userIds"] as? [String] == [dan.userID])
        #expect(system[2]["actorId"] as? String == ben.userID)
        // The actor has read what they did; the others have it unread, like a message.
        #expect(try await app.chat(ben, chatID)["unreadCount"] as? Int == 0)
        #expect(try await app.chat(cat, chatID)["unreadCount"] as? Int == 4)
        // A change that changes nothing tells nothing.
        _ = try Self.summary(try await Self.patch(app, ann, chatID, ["name": "Launch crew"]))
        _ = try Self.summary(try await Self.add(app, ann, chatID, [ben]))
        _ = try Self.summary(try await Self.setRole(app, ann, chatID, ben, "admin"))
        #expect(Shapes.seqs(try await app.history(ann, chatID)) == [1, 2, 3, 4])
        // A system message is the timeline's record: it cannot be deleted or edited, even by its actor.
        try await app.request(.delete, "\(api)/chats/\(chatID)/messages/1", as: ann).expectError(.forbidden, code: "not_editable", "delete")
        try await app.request(.patch, "\(api)/chats/\(chatID)/messages/1", as: ann, json: #"{"text":"x"}"#)
            .expectError(.forbidden, code: "not_editable", "edit")
    }

    static func membersCannotManageAndAdminsCannotReachPastTheirRole(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 4)
        let (owner, admin, member, other) = (people[0], people[1], people[2], people[3])
        let chatID = try await Self.group(app, owner, [admin, member, other])
        _ = try Self.summary(try await Self.setRole(app, owner, chatID, admin, "admin"))

        // A member manages nothing.
        try await Self.patch(app, member, chatID, ["name": "mine"]).expectError(.forbidden, code: "not_group_admin", "member renames")
        try await Self.add(app, member, chatID, [owner]).expectError(.forbidden, code: "not_group_admin", "member adds")
        try await Self.remove(app, member, chatID, owner).expectError(.forbidden, code: "not_group_admin", "member removes the owner")
        try await Self.remove(app, member, chatID, other).expectError(.forbidden, code: "not_group_admin", "member removes a member")
        try await Self.setRole(app, member, chatID, member, "admin").expectError(.forbidden, code: "not_group_admin", "member promotes self")
        try await Self.setRole(app, member, chatID, member, "owner").expectError(.forbidden, code: "not_group_admin", "member takes ownership")
        // An admin cannot make themselves owner, demote or remove the owner, or demote or remove another admin.
        try await Self.setRole(app, admin, chatID, admin, "owner").expectError(.forbidden, code: "not_group_owner", "admin takes ownership")
        try await Self.setRole(app, admin, chatID, other, "owner").expectError(.forbidden, code: "not_group_owner", "admin hands ownership")
        try await Self.setRole(app, admin, chatID, owner, "member").expectError(.forbidden, code: "not_group_owner", "admin demotes owner")
        try await Self.remove(app, admin, chatID, owner).expectError(.forbidden, code: "not_group_owner", "admin removes the owner")
        _ = try Self.summary(try await Self.setRole(app, owner, chatID, other, "admin"))
        try await Self.setRole(app, admin, chatID, other, "member").expectError(.forbidden, code: "not_group_owner", "admin demotes admin")
        try await Self.remove(app, admin, chatID, other).expectError(.forbidden, code: "not_group_owner", "admin removes admin")
        // The owner's own role changes only by handing it over.
        try await Self.setRole(app, owner, chatID, owner, "member").expectError(.conflict, code: "owner_must_hand_over", "owner steps down")
        // Nothing refused changed anything.
        let chat = try await app.chat(owner, chatID)
        #expect(Self.roles(chat) == [owner.userID: "owner", admin.userID: "admin", member.userID: "member", other.userID: "admin"])
        #expect(chat["name"] as? String == "Team")
        #expect(try await Self.systemMessages(app, owner, chatID).count == 2)
        // What an admin may do: promote a member, remove a member, step down.
        _ = try Self.summary(try await Self.setRole(app, admin, chatID, member, "admin"))
        _ = try Self.summary(try await Self.setRole(app, admin, chatID, member, "admin"))
        try await Self.remove(app, owner, chatID, member).expectNoContent()
        _ = try Self.summary(try await Self.setRole(app, admin, chatID, admin, "member"))
        #expect(Self.roles(try await app.chat(owner, chatID)) == [owner.userID: "owner", admin.userID: "member", other.userID: "admin"])
    }

    static func anAdminOfOneGroupHasNoStandingInAnother(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (ann, ben, cat) = (people[0], people[1], people[2])
        let mine = try await Self.group(app, ben, [ann, cat], name: "Ben's")
        let theirs = try await Self.group(app, ann, [ben], name: "Ann's")
        let foreign = try await Self.group(app, ann, [cat], name: "Ann and Cat")
        // Ben owns one group; in Ann's he is a member, in Ann and Cat's nobody.
        try await Self.patch(app, ben, theirs, ["name": "Ben's now"]).expectError(.forbidden, code: "not_group_admin", "other group")
        try await Self.remove(app, ben, theirs, ann).expectError(.forbidden, code: "not_group_admin", "other group's owner")
        try await Self.patch(app, ben, foreign, ["name": "x"]).expectError(.notFound, code: "chat_not_found", "a group he is not in")
        try await Self.remove(app, ben, foreign, cat).expectError(.notFound, code: "chat_not_found", "a group he is not in")
        try await Self.setRole(app, ben, foreign, ben, "owner").expectError(.notFound, code: "chat_not_found", "a group he is not in")
        // Someone of his own group named in another: not a member there.
        try await Self.setRole(app, ann, theirs, cat, "admin").expectError(.notFound, code: "member_not_found", "a member of another group")
        try await Self.remove(app, ann, theirs, cat).expectError(.notFound, code: "member_not_found", "a member of another group")
        #expect(Self.roles(try await app.chat(ann, mine))[ben.userID] == "owner")
        #expect(try await app.chat(ann, theirs)["name"] as? String == "Ann's")
    }

    static func strangersAreAnsweredAsIfTheGroupDidNotExist(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (ann, ben, mallory) = (people[0], people[1], people[2])
        let chatID = try await Self.group(app, ann, [ben])
        try await app.introduce(mallory, to: [ann, ben])
        for chat in [chatID, unknownID, "not-an-id"] {
            try await Self.patch(app, mallory, chat, ["name": "pwned"]).expectError(.notFound, code: "chat_not_found", "rename \(chat)")
            try await Self.patch(app, mallory, chat, ["avatarFileId": unknownID]).expectError(.notFound, code: "chat_not_found", "photo \(chat)")
            try await Self.add(app, mallory, chat, [mallory]).expectError(.notFound, code: "chat_not_found", "add \(chat)")
            try await Self.remove(app, mallory, chat, ben).expectError(.notFound, code: "chat_not_found", "remove \(chat)")
            try await Self.remove(app, mallory, chat, mallory).expectError(.notFound, code: "chat_not_found", "leave \(chat)")
            try await Self.setRole(app, mallory, chat, mallory, "owner").expectError(.notFound, code: "chat_not_found", "role \(chat)")
        }
        #expect(try await Self.systemMessages(app, ann, chatID).isEmpty)
        #expect(Self.roles(try await app.chat(ann, chatID)).count == 2)
    }

    static func directChatsHaveNothingToManage(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (ann, ben, cat) = (people[0], people[1], people[2])
        let chatID = try await app.directChat(ann, with: ben)
        try await app.introduce(ann, to: [cat])
        #expect(Self.roles(try await app.chat(ann, chatID)) == [ann.userID: "member", ben.userID: "member"])
        try await Self.patch(app, ann, chatID, ["name": "Us"]).expectError(.forbidden, code: "not_a_group", "rename")
        try await Self.add(app, ann, chatID, [cat]).expectError(.forbidden, code: "not_a_group", "add")
        try await Self.remove(app, ann, chatID, ben).expectError(.forbidden, code: "not_a_group", "remove")
        try await Self.remove(app, ann, chatID, ann).expectError(.forbidden, code: "not_a_group", "leave")
        try await Self.setRole(app, ann, chatID, ann, "owner").expectError(.forbidden, code: "not_a_group", "role")
        #expect(try await app.chat(ann, chatID)["name"] == nil)
    }

    // MARK: Consent

    static func onlyPeopleOneSharesAChatWithCanBeAdded(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 4)
        let (ann, ben, stranger, friendOfBen) = (people[0], people[1], people[2], people[3])
        try await app.introduce(ann, to: [ben])
        // Creating a group with a stranger is refused whole.
        let json = jsonText(["name": "Spam", "memberIds": [ben.userID, stranger.userID]])
        try await app.request(.post, "\(api)/chats", as: ann, json: json).expectError(.forbidden, code: "user_unreachable", "create")
        #expect(try await app.chatIDs(stranger) == [])
        #expect(try await app.chatIDs(ben).count == 1)
        // Adding one is refused too, even when a fellow member knows them.
        let chatID = try await Self.group(app, ann, [ben])
        try await app.introduce(ben, to: [friendOfBen])
        try await Self.add(app, ann, chatID, [friendOfBen]).expectError(.forbidden, code: "user_unreachable", "a friend of a member")
        try await Self.add(app, ann, chatID, [ben, stranger]).expectError(.forbidden, code: "user_unreachable", "one of several")
        #expect(try await app.chatIDs(stranger) == [])
        // Once they share a chat (the stranger wrote to Ann), they can be added.
        try await app.introduce(stranger, to: [ann])
        _ = try Self.summary(try await Self.add(app, ann, chatID, [stranger]))
        #expect(try await app.chatIDs(stranger).contains(chatID))
    }

    static func inputsAreCheckedForShapeAndSize(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (ann, ben) = (people[0], people[1])
        let chatID = try await Self.group(app, ann, [ben])
        let url = "\(api)/chats/\(chatID)"
        for name in ["", "   ", String(repeating: "x", count: 101), "bad\u{0}name", "two\nlines", "\u{202E}gnp.exe"] {
            try await Self.patch(app, ann, chatID, ["name": name]).expectError(.badRequest, code: "invalid_name", name.debugDescription)
        }
        _ = try Self.summary(try await Self.patch(app, ann, chatID, ["name": String(repeating: "é", count: 100)]))
        try await app.request(.patch, url, as: ann, json: #"{"name":5}"#).expectError(.badRequest, code: "invalid_request", "name of a number")
        try await app.request(.patch, url, as: ann, raw: "{", contentType: "application/json")
            .expectError(.badRequest, code: "invalid_request", "broken JSON")
        try await app.request(.post, "\(url)/members", as: ann, json: #"{"userIds":[]}"#)
            .expectError(.badRequest, code: "invalid_members", "no one")
        try await app.request(.post, "\(url)/members", as: ann, json: #"{"userIds":"x"}"#)
            .expectError(.badRequest, code: "invalid_request", "not a list")
        try await app.request(.post, "\(url)/members", as: ann, json: #"{}"#).expectError(.badRequest, code: "invalid_request", "missing")
        let tooMany = (0...1000).map { _ in Identifier.make() }
        try await app.request(.post, "\(url)/members", as: ann, json: jsonText(["userIds": tooMany]))
            .expectError(.badRequest, code: "invalid_members", "1,001 people")
        for bad in [unknownID, "not-an-id", String(repeating: "a", count: 5000)] {
            try await app.request(.post, "\(url)/members", as: ann, json: jsonText(["userIds": [bad]]))
                .expectError(.notFound, code: "user_not_found", "unknown \(bad.prefix(20))")
        }
        for role in ["root", "", "OWNER"] {
            try await Self.setRole(app, ann, chatID, ben, role).expectError(.badRequest, code: "invalid_role", "role \(role)")
        }
        try await app.request(.put, "\(url)/members/\(ben.userID)/role", as: ann, json: #"{"role":1}"#)
            .expectError(.badRequest, code: "invalid_request", "role of a number")
        try await app.request(.put, "\(url)/members/\(unknownID)/role", as: ann, json: #"{"role":"admin"}"#)
            .expectError(.notFound, code: "member_not_found", "role of no one")
        try await app.request(.delete, "\(url)/members/not-an-id", as: ann).expectError(.notFound, code: "member_not_found", "remove nonsense")
        #expect(Shapes.seqs(try await app.history(ann, chatID)) == [1])
    }

    // MARK: Ownership and leaving

    static func theOwnerHandsOwnershipOver(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (ann, ben, cat) = (people[0], people[1], people[2])
        let chatID = try await Self.group(app, ann, [ben, cat])
        let handed = try Self.summary(try await Self.setRole(app, ann, chatID, ben, "owner"))
        #expect(Self.roles(handed) == [ann.userID: "admin", ben.userID: "owner", cat.userID: "member"])
        let system = try await Self.systemMessages(app, cat, chatID)
        #expect(system.last?["action"] as? String == "owner" && system.last?["userIds"] as? [String] == [ben.userID])
        // The former owner is an admin now: the new owner is out of reach.
        try await Self.remove(app, ann, chatID, ben).expectError(.forbidden, code: "not_group_owner", "former owner removes the owner")
        try await Self.remove(app, ben, chatID, ann).expectNoContent()
        #expect(Self.roles(try await app.chat(ben, chatID)) == [ben.userID: "owner", cat.userID: "member"])
    }

    static func theLastOwnerLeavingHandsOwnershipToTheLongestStandingAdminOrMember(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 4)
        let (ann, ben, cat, dan) = (people[0], people[1], people[2], people[3])
        // The longest-standing admin inherits, not the longest-standing member.
        let first = try await Self.group(app, ann, [ben])
        try await app.introduce(ann, to: [cat, dan])
        _ = try Self.summary(try await Self.add(app, ann, first, [cat]))
        try await ChatRouteTests.tick()  // joined surely later than Cat
        _ = try Self.summary(try await Self.add(app, ann, first, [dan]))
        _ = try Self.summary(try await Self.setRole(app, ann, first, dan, "admin"))
        _ = try Self.summary(try await Self.setRole(app, ann, first, cat, "admin"))
        try await Self.remove(app, ann, first, ann).expectNoContent()
        #expect(Self.roles(try await app.chat(ben, first)) == [ben.userID: "member", cat.userID: "owner", dan.userID: "admin"])
        let system = try await Self.systemMessages(app, ben, first).suffix(2)
        #expect(system.map { $0["action"] as? String ?? "" } == ["left", "owner"])
        #expect(system.last?["userIds"] as? [String] == [cat.userID] && system.last?["actorId"] as? String == ann.userID)
        // With no admin, the longest-standing member.
        let second = try await Self.group(app, ann, [ben])
        try await ChatRouteTests.tick()
        _ = try Self.summary(try await Self.add(app, ann, second, [cat]))
        try await Self.remove(app, ann, second, ann).expectNoContent()
        #expect(Self.roles(try await app.chat(cat, second)) == [ben.userID: "owner", cat.userID: "member"])
        // An admin or member leaving hands nothing over.
        try await Self.remove(app, cat, second, cat).expectNoContent()
        #expect(Self.roles(try await app.chat(ben, second)) == [ben.userID: "owner"])
        #expect(try await Self.systemMessages(app, ben, second).last?["action"] as? String == "left")
    }

    static func aRemovedMemberLosesTheChatAndCannotWrite(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (ann, ben, cat) = (people[0], people[1], people[2])
        let chatID = try await Self.group(app, ann, [ben, cat])
        try await app.send(ben, to: chatID, "before")
        try await Self.remove(app, ann, chatID, ben).expectNoContent()
        // No history after leaving: the chat is gone from the list and every route answers as for a stranger.
        #expect(try await app.chatIDs(ben).contains(chatID) == false)
        try await app.request(.get, "\(api)/chats/\(chatID)", as: ben).expectError(.notFound, code: "chat_not_found", "summary")
        try await app.request(.get, "\(api)/chats/\(chatID)/messages", as: ben).expectError(.notFound, code: "chat_not_found", "history")
        try await app.request(.get, "\(api)/chats/\(chatID)/changes?after=0", as: ben).expectError(.notFound, code: "chat_not_found", "changes")
        let json = jsonText(["text": "still here?", "clientMessageId": "late"])
        try await app.request(.post, "\(api)/chats/\(chatID)/messages", as: ben, json: json)
            .expectError(.notFound, code: "chat_not_found", "send")
        try await app.request(.post, "\(api)/chats/\(chatID)/read", as: ben, json: #"{"seq":2}"#)
            .expectError(.notFound, code: "chat_not_found", "read")
        try await Self.remove(app, ben, chatID, ben).expectError(.notFound, code: "chat_not_found", "leave again")
        // Removing them again is no one to remove.
        try await Self.remove(app, ann, chatID, ben).expectError(.notFound, code: "member_not_found", "remove again")
        let messages = try await app.history(cat, chatID)["messages"] as? [[String: Any]] ?? []
        #expect(messages.count == 2)
        #expect((messages.last?["system"] as? [String: Any])?["action"] as? String == "removed")
        // Added back, they read the whole history again (as in Slack's or Mattermost's private channels).
        _ = try Self.summary(try await Self.add(app, ann, chatID, [ben]))
        #expect(Shapes.seqs(try await app.history(ben, chatID)) == [1, 2, 3])
    }

    static func aGroupPhotoIsAnImageTheSetterUploaded(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (ann, ben) = (people[0], people[1])
        let chatID = try await Self.group(app, ann, [ben])
        let mine = try FileQuotaAndSweepTests.file(of: try await FileQuotaAndSweepTests.uploadAlone(app, as: ann))
        let bens = try FileQuotaAndSweepTests.file(of: try await FileQuotaAndSweepTests.uploadAlone(app, as: ben))
        try await Self.patch(app, ann, chatID, ["avatarFileId": bens.id]).expectError(.notFound, code: "file_not_found", "someone else's file")
        try await Self.patch(app, ann, chatID, ["avatarFileId": unknownID]).expectError(.notFound, code: "file_not_found", "no file")
        try await Self.patch(app, ann, chatID, ["avatarFileId": 5]).expectError(.badRequest, code: "invalid_request", "a number")
        let withPhoto = try Self.summary(try await Self.patch(app, ann, chatID, ["avatarFileId": mine.id]))
        let url = try #require(withPhoto["avatarUrl"] as? String)
        #expect(url.contains("/api/v1/files/\(mine.id)"))
        #expect(try await FileRouteTests.fetch(app, url).status == .ok)
        #expect(try await app.chat(ben, chatID)["avatarUrl"] is String)
        let removed = try Self.summary(try await Self.patch(app, ann, chatID, ["avatarFileId": NSNull()]))
        #expect(removed["avatarUrl"] == nil)
        #expect(try await Self.systemMessages(app, ben, chatID).map { $0["action"] as? String ?? "" } == ["photo", "photo"])
    }

    // MARK: Blocks

    static func blockingIsInvisibleToTheBlockedPerson(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (ann, ben, cat) = (people[0], people[1], people[2])
        let chatID = try await app.directChat(ann, with: ben)
        try await app.send(ann, to: chatID, "hello ben")
        try await app.send(ben, to: chatID, "hi ann")
        try await app.request(.put, "\(api)/blocks/\(ben.userID)", as: ann).expectNoContent()
        try await app.request(.put, "\(api)/blocks/\(ben.userID)", as: ann).expectNoContent()
        // Ann's list names Ben; Ben's names no one.
        let list = try await app.request(.get, "\(api)/blocks", as: ann).expectJSON(.ok)
        #expect(Set(list.keys) == ["users"])
        let users = try #require(list["users"] as? [[String: Any]])
        #expect(users.compactMap { $0["id"] as? String } == [ben.userID])
        for user in users { Shapes.expectPublicUser(user) }
        #expect((try await app.request(.get, "\(api)/blocks", as: ben).expectJSON(.ok)["users"] as? [Any])?.isEmpty == true)

        // Ben writes on as before: his sends are stored and answered like any other, and he sees them.
        let sent = try await app.send(ben, to: chatID, "are you there? <@\(ann.userID)>")
        #expect(sent["seq"] as? Int == 3 && sent["kind"] as? String == "text")
        try await app.send(ben, to: chatID, "quokka?")
        #expect(Self.texts(try await app.history(ben, chatID)) == ["hello ben", "hi ann", "are you there? <@\(ann.userID)>", "quokka?"])
        // Ben edits and reacts to what he wrote since, and to what Ann has seen: all of it answered as ever, and his.
        _ = try MessageChangeRouteTests.message(try await MessageChangeRouteTests.edit(app, ben, chatID, 4, "quokka!"))
        _ = try MessageChangeRouteTests.message(try await MessageChangeRouteTests.react(app, ben, chatID, 4, "👍"))
        let edited = try MessageChangeRouteTests.message(
            try await MessageChangeRouteTests.edit(app, ben, chatID, 2, "hi ann, quokka <@\(ann.userID)>")
        )
        #expect(edited["editedAt"] is String && edited["text"] as? String == "hi ann, quokka <@\(ann.userID)>")
        let reacted = try MessageChangeRouteTests.message(try await MessageChangeRouteTests.react(app, ben, chatID, 1, "👀"))
        #expect(Self.reactions(reacted) == ["👀": [ben.userID]])
        let benSees = try await app.history(ben, chatID)
        #expect(Self.texts(benSees) == ["hello ben", "hi ann, quokka <@\(ann.userID)>", "are you there? <@\(ann.userID)>", "quokka!"])
        #expect(Self.reactions(try Self.message(benSees, 1)) == ["👀": [ben.userID]])
        // Ann sees none of it: what she had seen stays as it was, what Ben wrote since reads as tombstones (the seqs stay
        // dense: her client misses nothing); not unread, not a mention, not found, and not in what `/changes` brings her.
        let annSees = try await app.history(ann, chatID)
        #expect(Shapes.seqs(annSees) == [1, 2, 3, 4])
        #expect(Self.texts(annSees) == ["hello ben", "hi ann"])
        #expect((annSees["messages"] as? [[String: Any]])?.dropFirst(2).allSatisfy { $0["kind"] as? String == "deleted" } == true)
        let annSeesHers = try Self.message(annSees, 1)
        let annSeesHis = try Self.message(annSees, 2)
        #expect(Self.reactions(annSeesHers).isEmpty, "\(annSeesHers)")
        #expect(annSeesHis["editedAt"] == nil && (annSeesHis["mentions"] as? [String] ?? []).isEmpty, "\(annSeesHis)")
        let annChat = try await app.chat(ann, chatID)
        #expect(annChat["unreadCount"] as? Int == 1 && annChat["mentionCount"] as? Int == 0, "\(annChat)")
        #expect((annChat["lastMessage"] as? [String: Any])?["kind"] as? String == "deleted")
        #expect(try await MessageChangeRouteTests.searchTexts(app, ann, "q=quokka").isEmpty)
        let annFinds = try await MessageChangeRouteTests.searchTexts(app, ann, "q=hello")
        #expect(annFinds == ["hello ben"], "\(annFinds)")
        #expect(Set(try await MessageChangeRouteTests.searchTexts(app, ben, "q=quokka")) == ["quokka!", "hi ann, quokka <@\(ann.userID)>"])
        let changes = try await app.request(.get, "\(api)/chats/\(chatID)/changes?after=0", as: ann).expectJSON(.ok)
        let changed = try #require(changes["messages"] as? [[String: Any]])
        #expect(Set(changed.compactMap { $0["text"] as? String }) == ["hello ben", "hi ann"] && changed.count == 4, "\(changed)")
        #expect(changed.allSatisfy { Self.reactions($0).isEmpty && $0["editedAt"] == nil }, "\(changed)")
        // Ann reads what she can: nothing is left unread, and the pointer says no more than she read.
        try await app.markRead(ann, chatID, seq: "2").expectNoContent()
        #expect(try await app.chat(ann, chatID)["unreadCount"] as? Int == 0)
        // The blocker knows: her sends are refused, as before.
        try await app.request(.post, "\(api)/chats/\(chatID)/messages", as: ann, json: jsonText(["text": "x", "clientMessageId": "b2"]))
            .expectError(.forbidden, code: "user_unreachable", "the blocker writes")
        #expect(try await app.openDirect(ben, with: ann, status: .ok)["id"] as? String == chatID)

        // Someone blocked opens a new direct chat as with anyone; the blocker does not see it, and opens none herself.
        try await app.request(.put, "\(api)/blocks/\(ann.userID)", as: cat).expectNoContent()
        try await app.request(.post, "\(api)/chats", as: cat, json: jsonText(["userId": ann.userID]))
            .expectError(.forbidden, code: "user_unreachable", "the blocker opening one")
        let opened = try #require(try await app.openDirect(ann, with: cat, status: .created)["id"] as? String)
        try await app.send(ann, to: opened, "hello cat")
        #expect(try await app.chatIDs(cat) == [])
        // Taking back what one wrote still works.
        _ = try MessageChangeRouteTests.message(try await app.request(.delete, "\(api)/chats/\(chatID)/messages/3", as: ben))

        // Unblocking: what comes next reaches Ann; what Ben wrote or changed under the block stays his alone.
        try await app.request(.delete, "\(api)/blocks/\(ben.userID)", as: ann).expectNoContent()
        try await app.request(.delete, "\(api)/blocks/\(ben.userID)", as: ann).expectNoContent()
        try await app.send(ben, to: chatID, "back")
        let after = try await app.history(ann, chatID)
        #expect(Shapes.seqs(after) == [1, 2, 3, 4, 5] && Self.texts(after) == ["hello ben", "hi ann", "back"])
        // Reactions from now on reach both views; Ben's from under the block stays his.
        let annReacted = try MessageChangeRouteTests.message(try await MessageChangeRouteTests.react(app, ann, chatID, 1, "❤️"))
        #expect(Self.reactions(annReacted) == ["❤️": [ann.userID]], "the answer is her view too: \(annReacted)")
        #expect(Self.reactions(try Self.message(try await app.history(ann, chatID), 1)) == ["❤️": [ann.userID]])
        #expect(Self.reactions(try Self.message(try await app.history(ben, chatID), 1)) == ["👀": [ben.userID], "❤️": [ann.userID]])
        // A reply quoting what Ben wrote under the block shows Ann a deleted message, one quoting what he changed shows
        // her what she saw; Ben sees his words.
        let reply = jsonText(["text": "as I said", "clientMessageId": "reply-1", "replyToSeq": 4])
        try await app.request(.post, "\(api)/chats/\(chatID)/messages", as: ben, json: reply).expectJSON(.created)
        let again = jsonText(["text": "hi again", "clientMessageId": "reply-2", "replyToSeq": 2])
        try await app.request(.post, "\(api)/chats/\(chatID)/messages", as: ann, json: again).expectJSON(.created)
        let quotes = { (session: Session) in
            ((try await app.history(session, chatID, "?after=5")["messages"] as? [[String: Any]]) ?? []).map {
                $0["replyTo"] as? [String: Any] ?? [:]
            }
        }
        let annQuotes = try await quotes(ann)
        let benQuotes = try await quotes(ben)
        #expect(annQuotes.count == 2 && benQuotes.count == 2)
        #expect(annQuotes.first?["kind"] as? String == "deleted" && annQuotes.first?["text"] == nil, "\(annQuotes)")
        #expect(annQuotes.last?["text"] as? String == "hi ann", "\(annQuotes)")
        #expect(benQuotes.first?["text"] as? String == "quokka!" && (benQuotes.last?["text"] as? String)?.contains("quokka") == true, "\(benQuotes)")
        // An edit Ben makes now reaches Ann.
        _ = try MessageChangeRouteTests.message(try await MessageChangeRouteTests.edit(app, ben, chatID, 2, "hi ann!"))
        let now = try Self.message(try await app.history(ann, chatID), 2)
        #expect(now["text"] as? String == "hi ann!" && now["editedAt"] is String, "\(now)")
        try await app.request(.delete, "\(api)/blocks/\(ann.userID)", as: cat).expectNoContent()
        #expect(try await app.chatIDs(cat) == [opened])
        #expect(Self.texts(try await app.history(cat, opened)) == [])
        try await app.send(cat, to: opened, "hi ann")
    }

    /// The message `seq` of a history page.
    static func message(_ page: [String: Any], _ seq: Int) throws -> [String: Any] {
        try #require((page["messages"] as? [[String: Any]])?.first { $0["seq"] as? Int == seq })
    }

    /// A message's reactions, emoji to who reacted.
    static func reactions(_ message: [String: Any]) -> [String: [String]] {
        var reactions: [String: [String]] = [:]
        for reaction in message["reactions"] as? [[String: Any]] ?? [] {
            reactions[reaction["emoji"] as? String ?? ""] = reaction["userIds"] as? [String]
        }
        return reactions
    }

    static func texts(_ page: [String: Any]) -> [String] {
        (page["messages"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
    }

    static func blockedPeopleCannotBeAddedEitherWay(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 3)
        let (ann, ben, cat) = (people[0], people[1], people[2])
        try await app.introduce(ann, to: [ben, cat])
        let chatID = try await Self.group(app, cat, [ann])
        try await app.introduce(cat, to: [ben])
        try await app.request(.put, "\(api)/blocks/\(ann.userID)", as: ben).expectNoContent()
        // Ann, blocked by Ben, cannot put him into a group: the answer is the one for a stranger.
        let create = jsonText(["name": "With Ben", "memberIds": [ben.userID]])
        try await app.request(.post, "\(api)/chats", as: ann, json: create).expectError(.forbidden, code: "user_unreachable", "create")
        // Nor can Ben put Ann into one.
        try await app.request(.post, "\(api)/chats", as: ben, json: jsonText(["name": "With Ann", "memberIds": [ann.userID]]))
            .expectError(.forbidden, code: "user_unreachable", "the blocker creates")
        // Cat, who blocks no one, may still add Ben beside Ann: blocks do not reach into groups.
        _ = try Self.summary(try await Self.add(app, cat, chatID, [ben]))
        _ = try Self.summary(try await Self.setRole(app, cat, chatID, ann, "admin"))
        try await Self.remove(app, cat, chatID, ben).expectNoContent()
        try await Self.add(app, ann, chatID, [ben]).expectError(.forbidden, code: "user_unreachable", "an admin re-adds the blocker")
    }

    static func someoneWhoTurnedGroupAddsOffCannotBeAddedAndABlockLooksTheSame(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 4)
        let (ann, ben, cat, dan) = (people[0], people[1], people[2], people[3])
        try await app.introduce(ann, to: [ben, cat, dan])
        #expect(try await app.me(cat)["allowGroupAdds"] as? Bool == true)
        // Cat turns group adds off; Dan blocks Ann.
        let off = try await app.request(.patch, "/api/v1/me", as: cat, json: #"{"allowGroupAdds":false}"#).expectJSON(.ok)
        #expect(off["allowGroupAdds"] as? Bool == false && off["emailNotifications"] as? Bool == true, "\(off)")
        #expect(try await app.me(cat)["allowGroupAdds"] as? Bool == false)
        try await app.request(.put, "\(api)/blocks/\(ann.userID)", as: dan).expectNoContent()
        // Ann can add neither, at creation or later, and the two answers differ only by the name: nothing tells her
        // which is the block.
        let chatID = try await Self.group(app, ann, [ben])
        let refusal = { (someone: Session) async throws -> String in
            let create = jsonText(["name": "With them", "memberIds": [ben.userID, someone.userID]])
            try await app.request(.post, "\(api)/chats", as: ann, json: create).expectError(.forbidden, code: "user_unreachable", "create")
            let response = try await Self.add(app, ann, chatID, [someone])
            try response.expectError(.forbidden, code: "user_unreachable", "add")
            let message = try #require((try response.json()["error"] as? [String: Any])?["message"] as? String)
            let name = try #require(try await app.me(someone)["name"] as? String)
            return message.replacingOccurrences(of: name, with: "NAME")
        }
        let settingAnswer = try await refusal(cat)
        let blockAnswer = try await refusal(dan)
        #expect(settingAnswer == blockAnswer, "\(settingAnswer) / \(blockAnswer)")
        #expect((try await app.chat(ann, chatID)["members"] as? [Any])?.count == 2)
        // Nobody else can add Cat either; she still creates groups and adds others; turned on again, Ann adds her.
        try await Self.add(app, ben, try await Self.group(app, ben, [ann]), [cat]).expectError(.forbidden, code: "user_unreachable", "Ben")
        _ = try await Self.group(app, cat, [ann])
        for bad in ["null", "\"no\"", "0"] {
            try await app.request(.patch, "/api/v1/me", as: cat, json: #"{"allowGroupAdds":\#(bad)}"#)
                .expectError(.badRequest, code: "invalid_request", "allowGroupAdds \(bad)")
        }
        _ = try await app.request(.patch, "/api/v1/me", as: cat, json: #"{"allowGroupAdds":true}"#).expectJSON(.ok)
        _ = try Self.summary(try await Self.add(app, ann, chatID, [cat]))
    }

    static func blockRoutesRefuseNonsense(_ app: TestApp) async throws {
        let ann = try await app.signIn()
        try await app.request(.put, "\(api)/blocks/\(ann.userID)", as: ann).expectError(.badRequest, code: "invalid_user", "oneself")
        for bad in [unknownID, "not-an-id"] {
            try await app.request(.put, "\(api)/blocks/\(bad)", as: ann).expectError(.notFound, code: "user_not_found", bad)
        }
        try await app.request(.delete, "\(api)/blocks/not-an-id", as: ann).expectError(.notFound, code: "user_not_found", "unblock nonsense")
        #expect((try await app.request(.get, "\(api)/blocks", as: ann).expectJSON(.ok)["users"] as? [Any])?.isEmpty == true)
    }
}
