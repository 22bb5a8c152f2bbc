import Foundation
import ParleyCore
public import ParleyStore

/// Fills chats with many messages through the store's send statements, for load tests of history paging.
public struct HistorySeeder: Sendable {
    let store: ChatStore

    /// Works on `database`.
    public init(database: Database) {
        self.store = ChatStore(database: database)
    }

    /// The direct chat between two users: found, or created. The caller has checked that both exist.
    public func directChat(between userID: String, and otherID: String) async throws -> String {
        guard userID != otherID else { throw ChatError.invalidMembers("A direct chat needs two different users.") }
        guard Identifier.isValid(userID), Identifier.isValid(otherID) else { throw ChatError.userNotFound }
        return try await self.store.direct(between: userID, and: otherID, now: Timestamp.millis()).id
    }

    /// How long before the seeding its messages are dated.
    static let age: Int64 = 3_600_000

    /// Appends `count` text messages to `chatID`, sent in turn by its members, `batchSize` rows per transaction;
    /// `progress` hears the last seq after each batch. Returns the chat's last seq.
    @discardableResult
    public func seed(chatID: String, count: Int, batchSize: Int = 1000, progress: (Int64) -> Void = { _ in }) async throws -> Int64 {
        guard Identifier.isValid(chatID) else { throw ChatError.chatNotFound }
        let members = try await self.store.memberIDs(of: chatID).sorted()
        guard !members.isEmpty else { throw ChatError.chatNotFound }
        var remaining = count
        var lastSeq: Int64 = 0
        // Seeded messages are history: dated an hour ago and earlier (a millisecond apart, ids to match), so they read
        // as the past they stand for, and nothing takes them for messages just sent whose live event is still on its way.
        let dated = Timestamp.millis() - Self.age - Int64(count)
        var index: Int64 = 0
        while remaining > 0 {
            let size = min(batchSize, remaining)
            let last = try await self.store.appendHistory(to: chatID, count: size, now: Timestamp.millis()) { seq, position in
                let createdAt = dated + index + Int64(position)
                return MessageRecord(
                    id: Identifier.make(now: Date(timeIntervalSince1970: Double(createdAt) / 1000)),
                    chatID: chatID,
                    seq: seq,
                    senderID: members[Int(seq) % members.count],
                    kind: "text",
                    text: "Message \(seq)",
                    fileID: nil,
                    clientMessageID: nil,
                    createdAt: createdAt,
                    file: nil
                )
            }
            guard let last else { throw ChatError.chatNotFound }
            lastSeq = last
            remaining -= size
            index += Int64(size)
            progress(lastSeq)
        }
        try await self.store.settleAfterBulkLoad()
        return lastSeq
    }
}
