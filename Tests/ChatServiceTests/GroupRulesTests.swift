import Testing

@testable import ChatService

/// The rules of groups as pure functions: who may do what, and who inherits ownership.
@Suite struct GroupRulesTests {
    static func state(_ members: [(String, GroupRole)], kind: String = "group") -> GroupState {
        GroupState(
            chatID: "c",
            kind: kind,
            name: "Team",
            avatarFileID: nil,
            members: members.map { MemberRecord(chatID: "c", userID: $0.0, lastReadSeq: 0, role: $0.1) }
        )
    }

    @Test func aGroupStaysWithinItsMemberLimit() throws {
        let group = Self.state([("a", .owner), ("b", .member)])
        #expect(throws: ChatError.invalidMembers("A group has at most 3 members.")) {
            try GroupRules.add(["c", "d"], to: group, by: "a", maxMembers: 3)
        }
        let change = try GroupRules.add(["c", "b", "c"], to: group, by: "a", maxMembers: 3)
        #expect(change.added == ["c"] && change.events.map(\.action) == ["added"])
    }

    @Test func theHeirIsTheLongestStandingAdminElseMember() {
        let withAdmins = Self.state([("o", .owner), ("m", .member), ("a1", .admin), ("a2", .admin)])
        let change = GroupRules.leave(withAdmins, actorID: "o", role: .owner)
        #expect(change.roles.map(\.userID) == ["a1"] && change.roles.map(\.role) == [.owner])
        #expect(change.events.map(\.action) == ["left", "owner"])
        let membersOnly = Self.state([("o", .owner), ("m1", .member), ("m2", .member)])
        #expect(GroupRules.leave(membersOnly, actorID: "o", role: .owner).roles.map(\.userID) == ["m1"])
        let alone = Self.state([("o", .owner)])
        #expect(GroupRules.leave(alone, actorID: "o", role: .owner).roles.isEmpty)
        #expect(GroupRules.leave(withAdmins, actorID: "m", role: .member).roles.isEmpty)
    }

    @Test func escalationsAreRefused() {
        let group = Self.state([("o", .owner), ("a", .admin), ("m", .member)])
        #expect(throws: ChatError.notGroupOwner) { try GroupRules.setRole(.owner, of: "a", in: group, by: "a") }
        #expect(throws: ChatError.notGroupAdmin) { try GroupRules.setRole(.admin, of: "m", in: group, by: "m") }
        #expect(throws: ChatError.notGroupOwner) { try GroupRules.remove("o", from: group, by: "a") }
        #expect(throws: ChatError.ownerMustHandOver) { try GroupRules.setRole(.admin, of: "o", in: group, by: "o") }
        #expect(throws: ChatError.chatNotFound) { try GroupRules.remove("m", from: group, by: "stranger") }
        #expect(throws: ChatError.notAGroup) {
            try GroupRules.remove("m", from: Self.state([("o", .member), ("m", .member)], kind: "direct"), by: "o")
        }
    }
}
