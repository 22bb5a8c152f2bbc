import ParleyCore
import ParleyStore
import SQLKit

/// Chats, members and messages in the database: every statement on `chats`, `chat_members` and `messages`. Methods open
/// their own read or transaction; messages are stored only through the send transaction (ChatStore+Batch.swift).
struct ChatStore: Sendable {
    let database: Database

    /// The direct chat between two users: found, or created with both as members. `created` tells which.
    func direct(between userID: String, and otherID: String, now: Int64) async throws -> (id: String, created: Bool) {
        let key = userID < otherID ? "\(userID):\(otherID)" : "\(otherID):\(userID)"
        return try await self.database.transaction { sql in
            if let row = try await sql.raw("SELECT id FROM chats WHERE direct_key = \(bind: key)").first() {
                return (try row.decode(column: "id", as: String.self), false)
            }
            let id = Identifier.make()
            // Both people may open the chat at the same moment: the second insert waits for the first and yields to it.
            let inserted = try await sql.raw(
                """
                INSERT INTO chats (id, kind, direct_key, created_by, last_seq, created_at, updated_at)
                VALUES (\(bind: id), 'direct', \(bind: key), \(bind: userID), 0, \(bind: now), \(bind: now))
                ON CONFLICT (direct_key) DO NOTHING RETURNING id
                """
            ).first()
            guard inserted != nil else {
                let row = try await sql.raw("SELECT id FROM chats WHERE direct_key = \(bind: key)").first()
                guard let row else { throw StoreError("the direct chat that won the race is missing") }
                return (try row.decode(column: "id", as: String.self), false)
            }
            for member in [userID, otherID] {
                try await sql.raw(
                    "INSERT INTO chat_members (chat_id, user_id, last_read_seq, joined_at) VALUES (\(bind: id), \(bind: member), 0, \(bind: now))"
                ).run()
            }
            return (id, true)
        }
    }

    /// A new group chat with `name` and `members` (the creator included).
    func group(named name: String, creator: String, members: [String], now: Int64) async throws -> String {
        let id = Identifier.make()
        try await self.database.transaction { sql in
            try await sql.raw(
                """
                INSERT INTO chats (id, kind, name, created_by, last_seq, created_at, updated_at)
                VALUES (\(bind: id), 'group', \(bind: name), \(bind: creator), 0, \(bind: now), \(bind: now))
                """
            ).run()
            for member in members {
                try await sql.raw(
                    "INSERT INTO chat_members (chat_id, user_id, last_read_seq, joined_at) VALUES (\(bind: id), \(bind: member), 0, \(bind: now))"
                ).run()
            }
        }
        return id
    }

    /// The ids of a chat's members.
    func memberIDs(of chatID: String) async throws -> [String] {
        try await self.database.read { sql in
            try await sql.raw("SELECT user_id FROM chat_members WHERE chat_id = \(bind: chatID)").all().map {
                try $0.decode(column: "user_id", as: String.self)
            }
        }
    }

    /// The chats of `userID`, newest activity first, after the keyset (updatedAt, id).
    func chats(of userID: String, after cursor: (updatedAt: Int64, id: String)?, limit: Int) async throws -> [ChatRecord] {
        try await self.database.read { sql in
            var statement = SQLQueryString(
                "SELECT \(ChatRecord.columns) FROM chat_members me JOIN chats c ON c.id = me.chat_id WHERE me.user_id = \(bind: userID)"
            )
            if let cursor {
                statement = SQLQueryString(
                    "\(statement) AND (c.updated_at < \(bind: cursor.updatedAt) OR (c.updated_at = \(bind: cursor.updatedAt) AND c.id < \(bind: cursor.id)))"
                )
            }
            return try await sql.raw(SQLQueryString("\(statement) ORDER BY c.updated_at DESC, c.id DESC LIMIT \(bind: limit)")).all().map(
                ChatRecord.init(row:)
            )
        }
    }

    /// One chat, if `userID` is a member.
    func chat(_ chatID: String, visibleTo userID: String) async throws -> ChatRecord? {
        try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT \(ChatRecord.columns) FROM chat_members me JOIN chats c ON c.id = me.chat_id
                WHERE me.user_id = \(bind: userID) AND me.chat_id = \(bind: chatID)
                """
            ).first().map(ChatRecord.init(row:))
        }
    }

    /// The members and read pointers of every chat in `chatIDs`: one query whatever their number.
    func members(of chatIDs: [String]) async throws -> [MemberRecord] {
        guard !chatIDs.isEmpty else { return [] }
        return try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT chat_id, user_id, last_read_seq FROM chat_members
                WHERE chat_id IN (\(binds: chatIDs)) ORDER BY chat_id, joined_at, user_id
                """
            ).all().map { row in
                MemberRecord(
                    chatID: try row.decode(column: "chat_id", as: String.self),
                    userID: try row.decode(column: "user_id", as: String.self),
                    lastReadSeq: try row.decode(column: "last_read_seq", as: Int64.self)
                )
            }
        }
    }

    /// The last message of every chat in `chats`: one query whatever their number.
    func lastMessages(of chats: [ChatRecord]) async throws -> [String: MessageRecord] {
        let ids = chats.filter { $0.lastSeq > 0 }.map(\.id)
        guard !ids.isEmpty else { return [:] }
        return try await self.database.read { sql in
            let rows = try await sql.raw(
                """
                SELECT \(MessageRecord.columns) FROM chats c JOIN messages m ON m.chat_id = c.id AND m.seq = c.last_seq \(MessageRecord.fileJoin)
                WHERE c.id IN (\(binds: ids))
                """
            ).all()
            var result: [String: MessageRecord] = [:]
            for row in rows {
                let record = try MessageRecord(row: row)
                result[record.chatID] = record
            }
            return result
        }
    }

    /// The message `senderID` sent into `chatID` with `clientMessageID`, if any: idempotency is per chat and sender.
    func message(in chatID: String, sentBy senderID: String, clientMessageID: String) async throws -> MessageRecord? {
        try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT \(MessageRecord.columns) FROM messages m \(MessageRecord.fileJoin)
                WHERE m.chat_id = \(bind: chatID) AND m.sender_id = \(bind: senderID) AND m.client_message_id = \(bind: clientMessageID)
                """
            ).first().map(MessageRecord.init(row:))
        }
    }

    /// A page of messages in ascending seq: the latest, or those before/after a seq. `hasMore` says whether the page was cut.
    func messages(in chatID: String, before: Int64?, after: Int64?, limit: Int) async throws -> (records: [MessageRecord], hasMore: Bool) {
        try await self.database.read { sql in
            let select = SQLQueryString("SELECT \(MessageRecord.columns) FROM messages m \(MessageRecord.fileJoin) WHERE m.chat_id = \(bind: chatID)")
            var rows: [MessageRecord]
            if let after {
                var statement = SQLQueryString("\(select) AND m.seq > \(bind: after)")
                if let before { statement = SQLQueryString("\(statement) AND m.seq < \(bind: before)") }
                rows = try await sql.raw(SQLQueryString("\(statement) ORDER BY m.seq ASC LIMIT \(bind: limit + 1)")).all().map(
                    MessageRecord.init(row:)
                )
                let hasMore = rows.count > limit
                return (Array(rows.prefix(limit)), hasMore)
            }
            var statement = select
            if let before { statement = SQLQueryString("\(statement) AND m.seq < \(bind: before)") }
            rows = try await sql.raw(SQLQueryString("\(statement) ORDER BY m.seq DESC LIMIT \(bind: limit + 1)")).all().map(MessageRecord.init(row:))
            let hasMore = rows.count > limit
            return (Array(rows.prefix(limit).reversed()), hasMore)
        }
    }

    /// Moves `userID`'s read pointer in `chatID` forward to `seq` (capped at the chat's last seq); returns the new pointer if it moved.
    func markRead(chatID: String, userID: String, seq: Int64) async throws -> Int64? {
        try await self.database.transaction { sql in
            guard
                let row = try await sql.raw(
                    """
                    UPDATE chat_members SET last_read_seq = (SELECT CASE WHEN c.last_seq < \(bind: seq) THEN c.last_seq ELSE \(bind: seq) END FROM chats c WHERE c.id = \(bind: chatID))
                    WHERE chat_id = \(bind: chatID) AND user_id = \(bind: userID)
                      AND last_read_seq < (SELECT CASE WHEN c.last_seq < \(bind: seq) THEN c.last_seq ELSE \(bind: seq) END FROM chats c WHERE c.id = \(bind: chatID))
                    RETURNING last_read_seq
                    """
                ).first()
            else { return nil }
            return try row.decode(column: "last_read_seq", as: Int64.self)
        }
    }

    /// Whether `userID` is a member of `chatID`.
    func isMember(_ userID: String, of chatID: String) async throws -> Bool {
        try await self.database.read { sql in
            try await sql.raw("SELECT 1 AS one FROM chat_members WHERE chat_id = \(bind: chatID) AND user_id = \(bind: userID)").first() != nil
        }
    }

    /// The first and last seq of every chat's messages stored since `millis`, for catching up after the bus was away.
    func recentSeqRanges(since millis: Int64) async throws -> [(chatID: String, firstSeq: Int64, lastSeq: Int64)] {
        // Message ids are UUIDv7: the primary key orders them by time, so no index on the hot path is needed for this.
        let bound = Identifier.lowerBound(millis: millis)
        return try await self.database.read { sql in
            try await sql.raw("SELECT chat_id, MIN(seq) AS first_seq, MAX(seq) AS last_seq FROM messages WHERE id >= \(bind: bound) GROUP BY chat_id")
                .all().map { row in
                    (
                        try row.decode(column: "chat_id", as: String.self), try row.decode(column: "first_seq", as: Int64.self),
                        try row.decode(column: "last_seq", as: Int64.self)
                    )
                }
        }
    }

    /// The people who share at least one chat with `userID`.
    func contacts(of userID: String) async throws -> [String] {
        try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT DISTINCT other.user_id FROM chat_members me JOIN chat_members other ON other.chat_id = me.chat_id
                WHERE me.user_id = \(bind: userID) AND other.user_id <> \(bind: userID)
                """
            ).all().map { try $0.decode(column: "user_id", as: String.self) }
        }
    }
}
