import Foundation
import ParleyCore
import ParleyStore
import SQLKit

/// Fills chats with many messages straight through the store, for load tests of history paging.
public struct HistorySeeder: Sendable {
    let store: ChatStore

    /// Works on `database`.
    public init(database: Database) {
        self.store = ChatStore(database: database)
    }

    /// The direct chat between two existing users: found, or created.
    public func directChat(between userID: String, and otherID: String) async throws -> String {
        guard userID != otherID else { throw APIError.badRequest("A direct chat needs two different users.", code: "invalid_members") }
        let users = try await self.store.database.read { sql in
            try await sql.raw("SELECT id FROM users WHERE id IN (\(binds: [userID, otherID]))").all().count
        }
        guard Identifier.isValid(userID), Identifier.isValid(otherID), users == 2 else {
            throw APIError.notFound("There is no such user.", code: "user_not_found")
        }
        return try await self.store.direct(between: userID, and: otherID, now: Timestamp.millis()).id
    }

    /// Appends `count` text messages to `chatID`, sent in turn by its members, `batchSize` rows per transaction;
    /// `progress` hears the last seq after each batch. Returns the chat's last seq.
    /// How long before the seeding its messages are dated.
    static let age: Int64 = 3_600_000

    @discardableResult
    public func seed(chatID: String, count: Int, batchSize: Int = 1000, progress: (Int64) -> Void = { _ in }) async throws -> Int64 {
        guard Identifier.isValid(chatID) else { throw ChatService.chatNotFound }
        let members = try await self.store.memberIDs(of: chatID).sorted()
        guard !members.isEmpty else { throw ChatService.chatNotFound }
        var remaining = count
        var lastSeq: Int64 = 0
        // Seeded messages are history: dated an hour ago and earlier (a millisecond apart, ids to match), so they read
        // as the past they stand for, and nothing takes them for messages just sent whose live event is still on its way.
        let dated = Timestamp.millis() - Self.age - Int64(count)
        var index: Int64 = 0
        while remaining > 0 {
            let size = min(batchSize, remaining)
            lastSeq = try await self.store.database.transaction { sql in
                let now = Timestamp.millis()
                // Taking the seqs moves last_seq first, under the chat's row lock (PostgreSQL) or the one writer (SQLite):
                // messages sent meanwhile still get dense seqs after these.
                guard let row = try await sql.raw(
                    "UPDATE chats SET last_seq = last_seq + \(bind: Int64(size)), updated_at = \(bind: now) WHERE id = \(bind: chatID) RETURNING last_seq"
                ).first() else { throw ChatService.chatNotFound }
                let last = try row.decode(column: "last_seq", as: Int64.self)
                let first = last - Int64(size) + 1
                let rows = (first...last).map { seq in
                    let createdAt = dated + index + seq - first
                    let id = Identifier.make(now: Date(timeIntervalSince1970: Double(createdAt) / 1000))
                    return SQLQueryString(
                        "(\(bind: id), \(bind: chatID), \(bind: seq), \(bind: members[Int(seq) % members.count]), 'text', \(bind: "Message \(seq)"), \(bind: createdAt))"
                    )
                }
                try await sql.raw("INSERT INTO messages (id, chat_id, seq, sender_id, kind, text, created_at) VALUES \(SQLList(rows))").run()
                return last
            }
            remaining -= size
            index += Int64(size)
            progress(lastSeq)
        }
        return lastSeq
    }
}
