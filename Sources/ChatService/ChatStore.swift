import ParleyCore
import ParleyStore
import SQLKit

/// Chats, members and messages in the database.
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
                guard let row else { throw APIError.internalError }
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
            try await sql.raw("SELECT user_id FROM chat_members WHERE chat_id = \(bind: chatID)").all().map { try $0.decode(column: "user_id", as: String.self) }
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
            return try await sql.raw(SQLQueryString("\(statement) ORDER BY c.updated_at DESC, c.id DESC LIMIT \(bind: limit)")).all().map(ChatRecord.init(row:))
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
                    chatID: try row.decode(column: "chat_id", as: String.self), userID: try row.decode(column: "user_id", as: String.self),
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

    /// What sending a message led to.
    enum AppendOutcome: Sendable {
        case created(MessageRecord)
        case duplicate(MessageRecord)
        case notMember
    }

    /// Appends a message with the chat's next seq, moves the chat's activity and the sender's read pointer: one transaction.
    func append(
        chatID: String, senderID: String, text: String?, file: FileRecord?, clientMessageID: String?, now: Int64
    ) async throws -> AppendOutcome {
        do {
            return try await self.appendOnce(chatID: chatID, senderID: senderID, text: text, file: file, clientMessageID: clientMessageID, now: now)
        } catch {
            // Two sends of one clientMessageId at the same moment: the loser's insert hits the unique index and rolls back
            // whole (its seq with it); the message the winner stored is the answer.
            guard let clientMessageID, let stored = try await self.message(in: chatID, sentBy: senderID, clientMessageID: clientMessageID) else {
                throw error
            }
            return .duplicate(stored)
        }
    }

    /// The message `senderID` sent into `chatID` with `clientMessageID`, if any: idempotency is per chat and sender.
    func message(in chatID: String, sentBy senderID: String, clientMessageID: String) async throws -> MessageRecord? {
        try await self.database.read { sql in
            try await Self.message(in: chatID, sentBy: senderID, clientMessageID: clientMessageID, sql: sql)
        }
    }

    static func message(in chatID: String, sentBy senderID: String, clientMessageID: String, sql: any SQLDatabase) async throws -> MessageRecord? {
        try await sql.raw(
            """
            SELECT \(MessageRecord.columns) FROM messages m \(MessageRecord.fileJoin)
            WHERE m.chat_id = \(bind: chatID) AND m.sender_id = \(bind: senderID) AND m.client_message_id = \(bind: clientMessageID)
            """
        ).first().map(MessageRecord.init(row:))
    }

    private func appendOnce(
        chatID: String, senderID: String, text: String?, file: FileRecord?, clientMessageID: String?, now: Int64
    ) async throws -> AppendOutcome {
        try await self.database.transaction { sql in
            guard try await sql.raw(
                "SELECT 1 AS one FROM chat_members WHERE chat_id = \(bind: chatID) AND user_id = \(bind: senderID)"
            ).first() != nil else { return .notMember }
            if let clientMessageID, let stored = try await Self.message(in: chatID, sentBy: senderID, clientMessageID: clientMessageID, sql: sql) {
                return .duplicate(stored)
            }
            // The row update takes the chat's lock (PostgreSQL) or runs under the single writer (SQLite): seqs stay dense.
            guard let row = try await sql.raw(
                "UPDATE chats SET last_seq = last_seq + 1, updated_at = \(bind: now) WHERE id = \(bind: chatID) RETURNING last_seq"
            ).first() else { return .notMember }
            let seq = try row.decode(column: "last_seq", as: Int64.self)
            let record = MessageRecord(
                id: Identifier.make(), chatID: chatID, seq: seq, senderID: senderID, kind: file == nil ? "text" : "image", text: text,
                fileID: file?.id, clientMessageID: clientMessageID, createdAt: now, file: file
            )
            try await sql.raw(
                """
                INSERT INTO messages (id, chat_id, seq, sender_id, kind, text, file_id, client_message_id, created_at)
                VALUES (\(bind: record.id), \(bind: chatID), \(bind: seq), \(bind: senderID), \(bind: record.kind), \(bind: text),
                        \(bind: file?.id), \(bind: clientMessageID), \(bind: now))
                """
            ).run()
            if let file {
                try await sql.raw("UPDATE files SET chat_id = \(bind: chatID) WHERE id = \(bind: file.id)").run()
            }
            try await sql.raw(
                "UPDATE chat_members SET last_read_seq = \(bind: seq) WHERE chat_id = \(bind: chatID) AND user_id = \(bind: senderID) AND last_read_seq < \(bind: seq)"
            ).run()
            return .created(record)
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
                rows = try await sql.raw(SQLQueryString("\(statement) ORDER BY m.seq ASC LIMIT \(bind: limit + 1)")).all().map(MessageRecord.init(row:))
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
            guard let row = try await sql.raw(
                """
                UPDATE chat_members SET last_read_seq = (SELECT CASE WHEN c.last_seq < \(bind: seq) THEN c.last_seq ELSE \(bind: seq) END FROM chats c WHERE c.id = \(bind: chatID))
                WHERE chat_id = \(bind: chatID) AND user_id = \(bind: userID)
                  AND last_read_seq < (SELECT CASE WHEN c.last_seq < \(bind: seq) THEN c.last_seq ELSE \(bind: seq) END FROM chats c WHERE c.id = \(bind: chatID))
                RETURNING last_read_seq
                """
            ).first() else { return nil }
            return try row.decode(column: "last_read_seq", as: Int64.self)
        }
    }

    /// Whether `userID` is a member of `chatID`.
    func isMember(_ userID: String, of chatID: String) async throws -> Bool {
        try await self.database.read { sql in
            try await sql.raw("SELECT 1 AS one FROM chat_members WHERE chat_id = \(bind: chatID) AND user_id = \(bind: userID)").first() != nil
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

extension ChatStore {
    /// The stored facts of file `id`.
    func file(_ id: String) async throws -> FileRecord? {
        try await self.database.read { sql in
            try await sql.raw("SELECT id, content_type, size, width, height FROM files WHERE id = \(bind: id)").first().map { row in
                FileRecord(
                    id: try row.decode(column: "id", as: String.self), contentType: try row.decode(column: "content_type", as: String.self),
                    size: try row.decode(column: "size", as: Int64.self), width: try row.decode(column: "width", as: Int?.self),
                    height: try row.decode(column: "height", as: Int?.self)
                )
            }
        }
    }
}
