import ParleyCore
import ParleyStore
import SQLKit

/// Changes to a group's name, photo, members and roles, each with the system messages that tell it; and blocks.
extension ChatStore {
    /// Changes group `chatID` as `plan` decides from the group as it stands, in one transaction under the chat's lock:
    /// the members, roles, name and photo, and one system message per event, each with the chat's next seq and version
    /// (taken with the statement a send takes them with). Returns the system messages (none when nothing changed);
    /// whatever `plan` throws is the answer, and nothing is stored.
    func changeGroup(
        _ chatID: String,
        by actorID: String,
        now: Int64,
        plan: (GroupState) throws -> GroupChange
    ) async throws -> [MessageRecord] {
        try await self.database.transaction { sql in
            // The chat's row lock first (as a send takes it), then its members: a change decides on a group no one else
            // is changing, and a send that commits before it is in its timeline before it.
            guard
                let chat = try await sql.raw(
                    "UPDATE chats SET version = version WHERE id = \(bind: chatID) RETURNING id, kind, name, avatar_file_id"
                ).first()
            else { throw ChatError.chatNotFound }
            let members = try await sql.raw(
                "SELECT user_id, last_read_seq, role FROM chat_members WHERE chat_id = \(bind: chatID) ORDER BY joined_at, user_id"
            ).all().map { row in
                MemberRecord(
                    chatID: chatID,
                    userID: try row.decode(column: "user_id", as: String.self),
                    lastReadSeq: try row.decode(column: "last_read_seq", as: Int64.self),
                    role: GroupRole(rawValue: try row.decode(column: "role", as: String.self)) ?? .member
                )
            }
            let state = GroupState(
                chatID: chatID,
                kind: try chat.decode(column: "kind", as: String.self),
                name: try chat.decode(column: "name", as: String?.self),
                avatarFileID: try chat.decode(column: "avatar_file_id", as: String?.self),
                members: members
            )
            let change = try plan(state)
            guard !change.events.isEmpty else { return [] }

            if let photo = change.photo {
                if case .set(let fileID) = photo {
                    // Only an image the setter uploaded, as with a person's avatar.
                    guard try await FileStore.claimAsAvatar(fileID, by: actorID, now: now, in: sql) else { throw ChatError.fileNotFound }
                }
                if let previous = state.avatarFileID { try await FileStore.releaseAvatar(previous, in: sql) }
                let fileID: String? = if case .set(let id) = photo { id } else { nil }
                try await sql.raw("UPDATE chats SET avatar_file_id = \(bind: fileID) WHERE id = \(bind: chatID)").run()
            }
            if let name = change.name {
                try await sql.raw("UPDATE chats SET name = \(bind: name) WHERE id = \(bind: chatID)").run()
            }
            let count = Int64(change.events.count)
            guard let first = try await Self.takeSeqs([chatID: count], versions: [chatID: count], now: now, in: sql)[chatID] else {
                throw ChatError.chatNotFound
            }
            for userID in change.removed {
                try await sql.raw("DELETE FROM chat_members WHERE chat_id = \(bind: chatID) AND user_id = \(bind: userID)").run()
            }
            if !change.added.isEmpty {
                // New members have read everything before the message that adds them: it is their one unread message.
                let rows = change.added.map { SQLQueryString("(\(bind: chatID), \(bind: $0), \(bind: first.seq - 1), \(bind: now), 'member')") }
                try await sql.raw("INSERT INTO chat_members (chat_id, user_id, last_read_seq, joined_at, role) VALUES \(SQLList(rows))").run()
            }
            for (userID, role) in change.roles {
                try await sql.raw(
                    "UPDATE chat_members SET role = \(bind: role.rawValue) WHERE chat_id = \(bind: chatID) AND user_id = \(bind: userID)"
                ).run()
            }
            let records = change.events.enumerated().map { position, event in
                var record = MessageRecord(
                    id: Identifier.make(),
                    chatID: chatID,
                    seq: first.seq + Int64(position),
                    senderID: actorID,
                    kind: "system",
                    text: nil,
                    fileID: nil,
                    clientMessageID: nil,
                    createdAt: now,
                    file: nil,
                    system: event
                )
                record.version = first.version + Int64(position)
                return record
            }
            try await Self.insert(records, in: sql)
            try await Self.moveSendersReadPointers(past: records, in: sql)
            return records
        }
    }

    /// Those of `candidates` that `userID` may add to a group: people who share a chat with them, with no block either way,
    /// and not among those `refusing` finds (who turned group adds off).
    func reachable(from userID: String, among candidates: [String], refusing: GroupAddRefusals) async throws -> Set<String> {
        guard !candidates.isEmpty else { return [] }
        return try await self.database.read { sql in
            let sharing = Set(
                try await sql.raw(
                    """
                    SELECT DISTINCT other.user_id FROM chat_members me JOIN chat_members other ON other.chat_id = me.chat_id
                    WHERE me.user_id = \(bind: userID) AND other.user_id IN (\(binds: candidates))
                      AND NOT EXISTS (
                        SELECT 1 FROM blocks b WHERE (b.blocker_id = \(bind: userID) AND b.blocked_id = other.user_id)
                                                 OR (b.blocker_id = other.user_id AND b.blocked_id = \(bind: userID))
                      )
                    """
                ).all().map { try $0.decode(column: "user_id", as: String.self) }
            )
            return sharing.subtracting(try await refusing(Array(sharing), sql))
        }
    }

    /// The key that makes the direct chat of two people unique, whoever opens it.
    static func directKey(_ userID: String, _ otherID: String) -> String {
        userID < otherID ? "\(userID):\(otherID)" : "\(otherID):\(userID)"
    }

    /// Whether either of two people blocks the other.
    func isBlocked(between userID: String, and otherID: String) async throws -> Bool {
        try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT 1 AS one FROM blocks WHERE (blocker_id = \(bind: userID) AND blocked_id = \(bind: otherID))
                                               OR (blocker_id = \(bind: otherID) AND blocked_id = \(bind: userID))
                """
            ).first() != nil
        }
    }

    /// `blockerID` blocks `blockedID` (again: nothing changes); their direct chat, if any, takes nothing new. Returns the
    /// id of that chat.
    @discardableResult
    func block(_ blockedID: String, by blockerID: String, now: Int64) async throws -> String? {
        try await self.database.transaction { sql in
            try await sql.raw(
                """
                INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (\(bind: blockerID), \(bind: blockedID), \(bind: now))
                ON CONFLICT (blocker_id, blocked_id) DO NOTHING
                """
            ).run()
            return try await sql.raw(
                "UPDATE chats SET blocked = 1 WHERE direct_key = \(bind: Self.directKey(blockerID, blockedID)) RETURNING id"
            ).first()?.decode(column: "id", as: String.self)
        }
    }

    /// `blockerID` no longer blocks `blockedID`; their direct chat opens again unless the other blocks them too. Returns
    /// that chat's id and whether it is still blocked, if they have one.
    @discardableResult
    func unblock(_ blockedID: String, by blockerID: String) async throws -> (chatID: String, blocked: Bool)? {
        try await self.database.transaction { sql in
            try await sql.raw("DELETE FROM blocks WHERE blocker_id = \(bind: blockerID) AND blocked_id = \(bind: blockedID)").run()
            let row = try await sql.raw(
                """
                UPDATE chats SET blocked = CASE WHEN EXISTS (
                    SELECT 1 FROM blocks WHERE blocker_id = \(bind: blockedID) AND blocked_id = \(bind: blockerID)
                ) THEN 1 ELSE 0 END
                WHERE direct_key = \(bind: Self.directKey(blockerID, blockedID)) RETURNING id, blocked
                """
            ).first()
            guard let row else { return nil }
            let chatID = try row.decode(column: "id", as: String.self)
            // A chat the other opened under the block is the unblocker's to see now.
            try await sql.raw("UPDATE chat_members SET hidden = FALSE WHERE chat_id = \(bind: chatID) AND user_id = \(bind: blockerID) AND hidden")
                .run()
            return (chatID, try row.decode(column: "blocked", as: Int.self) != 0)
        }
    }

    /// The people `userID` blocks, the latest first.
    func blocks(of userID: String) async throws -> [String] {
        try await self.database.read { sql in
            try await sql.raw("SELECT blocked_id FROM blocks WHERE blocker_id = \(bind: userID) ORDER BY created_at DESC, blocked_id").all().map {
                try $0.decode(column: "blocked_id", as: String.self)
            }
        }
    }
}
