import Foundation
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import Testing

@testable import ChatService

/// On PostgreSQL, chat instances write at once: a send whose batch read its sender's membership just before another
/// transaction removed them (under the chat's row lock, as a group change does) must not land after the removal.
@Suite struct MembershipRaceTests {
    @Test func aSendWaitingForTheChatsLockIsRefusedWhenItsSenderWasRemovedMeanwhile() async throws {
        try await TestDatabases.with(.postgres) { database in
            let users = try await makeUsers(3, in: database)
            let (ann, bob, cat) = (users[0], users[1], users[2])
            let chats = try await ChatServiceTests().service(database, users: users)
            try await withRunning(chats.writer) {
                for other in [bob, cat] { _ = try await chats.openDirect(userID: ann, with: other) }
                let group = try await chats.createGroup(userID: ann, name: "Race", memberIDs: [bob, cat])
                _ = try await chats.send(chatID: group.id, userID: bob, text: "before", upload: nil, clientMessageID: nil)
                let (locked, lockedContinuation) = AsyncStream.makeStream(of: Void.self)
                // The removal: the chat's row lock first, as ChatStore.changeGroup takes it, held for a while.
                async let removal: Void = database.transaction { sql in
                    try await sql.raw("UPDATE chats SET version = version WHERE id = \(bind: group.id)").run()
                    try await sql.raw("DELETE FROM chat_members WHERE chat_id = \(bind: group.id) AND user_id = \(bind: bob)").run()
                    lockedContinuation.yield()
                    // Long enough for the send's batch to read bob as a member and wait for the lock.
                    try await Task.sleep(for: .milliseconds(600))
                }
                for await _ in locked { break }
                async let sent: (any Error)? = {
                    do {
                        _ = try await chats.send(chatID: group.id, userID: bob, text: "after", upload: nil, clientMessageID: nil)
                        return nil
                    } catch {
                        return error
                    }
                }()
                try await removal
                #expect(await sent as? ChatError == .chatNotFound)
                let texts = try await chats.messages(in: group.id, for: ann, before: nil, after: nil, limit: 50).messages.compactMap(\.text)
                #expect(texts.contains("before") && !texts.contains("after"), "\(texts)")
            }
        }
    }
}
