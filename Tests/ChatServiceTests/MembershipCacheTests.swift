import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import Testing

@testable import ChatService

@Suite("A person's contacts, from the members in memory")
struct MembershipCacheTests {
    @Test("everyone who shares a chat, once, but not themselves nor anyone a block stands between, either way", arguments: DatabaseKind.allCases)
    func contactsAreEveryoneSharingAChatButBlocksHideBothWays(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let cache = MembershipCache(store: store)
            // me, a friend (direct and group), two group members, one I block, one who blocks me, and a stranger.
            let users = try await makeUsers(7, in: database)
            let (me, friend, member, other, blockedByMe, blockingMe, stranger) = (
                users[0], users[1], users[2], users[3], users[4], users[5], users[6]
            )
            _ = try await store.direct(between: me, and: friend, now: 1)
            let group = try await store.group(named: "g", creator: me, members: [me, friend, member, other, blockedByMe, blockingMe], now: 1)
            _ = try await store.direct(between: stranger, and: friend, now: 1)
            try await store.block(blockedByMe, by: me, now: 2)
            try await store.block(me, by: blockingMe, now: 2)

            let expected: Set = [friend, member, other]
            // Nothing known here yet: everything from the database.
            let first = try await cache.contacts(of: me)
            #expect(Set(first) == expected)
            #expect(first.count == expected.count)
            // The group known here (as once it carried an event): the same answer, its members from memory.
            _ = try await cache.members(of: group)
            #expect(Set(try await cache.contacts(of: me)) == expected)
            // The blocks hide both ways: neither blocked person sees me, and the one I block sees the others still.
            #expect(!(try await cache.contacts(of: blockedByMe)).contains(me))
            #expect(!(try await cache.contacts(of: blockingMe)).contains(me))
            #expect(Set(try await cache.contacts(of: blockedByMe)) == [friend, member, other, blockingMe])
            #expect(Set(try await cache.contacts(of: stranger)) == [friend])
            #expect(try await cache.contacts(of: Identifier.make()).isEmpty)
        }
    }

    @Test(
        "the members of a chat known here come from memory: a reconnect storm does not read a big group once per connect",
        arguments: DatabaseKind.allCases
    )
    func knownChatsAreNotReadAgain(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let cache = MembershipCache(store: store)
            let users = try await makeUsers(5, in: database)
            let group = try await store.group(named: "g", creator: users[0], members: [users[0], users[1], users[2]], now: 1)
            // What this process last heard of the group (its chatUpdated) is what counts, not a second look at the table:
            // here memory says users[3] joined and users[2] left, which the table does not know.
            cache.remember(group, members: [users[0], users[1], users[3]])
            #expect(Set(try await cache.contacts(of: users[0])) == [users[1], users[3]])
            // A chat not known here is read, and not remembered: connecting does not fill memory with everyone's chats.
            let direct = try await store.direct(between: users[2], and: users[4], now: 2)
            #expect(Set(try await cache.contacts(of: users[2])) == [users[0], users[1], users[3], users[4]])
            try await database.transaction { sql in
                try await sql.raw("DELETE FROM chat_members WHERE chat_id = \(bind: direct.id) AND user_id = \(bind: users[4])").run()
            }
            #expect(Set(try await cache.contacts(of: users[2])) == [users[0], users[1], users[3]])
        }
    }
}
