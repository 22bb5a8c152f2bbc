import ParleyCore
import ParleyStore
import SQLKit

/// Chats, members and messages in the database: every statement on `chats`, `chat_members` and `messages`. Methods open
/// their own read or transaction; messages are stored only through the send transaction (ChatStore+Batch.swift).
struct ChatStore: Sendable {
    let database: Database

    /// The direct chat between two users: found, or created with both as members. `created` tells which.
    func direct(between userID: String, and otherID: String, now: Int64) async throws -> (id: String, created: Bool) {
        let key = Self.directKey(userID, otherID)
        return try await self.database.transaction { sql in
            if let row = try await sql.raw("SELECT id FROM chats WHERE direct_key = \(bind: key)").first() {
                return (try row.decode(column: "id", as: String.self), false)
            }
            let id = Identifier.make()
            // Both people may open the chat at the same moment: the second insert waits for the first and yields to it.
            let inserted = try await sql.raw(
                """
                INSERT INTO chats (id, kind, direct_key, created_by, last_seq, created_at, updated_at, blocked)
                VALUES (\(bind: id), 'direct', \(bind: key), \(bind: userID), 0, \(bind: now), \(bind: now), CASE WHEN EXISTS (
                    SELECT 1 FROM blocks WHERE (blocker_id = \(bind: userID) AND blocked_id = \(bind: otherID))
                                            OR (blocker_id = \(bind: otherID) AND blocked_id = \(bind: userID))
                ) THEN 1 ELSE 0 END)
                ON CONFLICT (direct_key) DO NOTHING RETURNING id
                """
            ).first()
            guard inserted != nil else {
                let row = try await sql.raw("SELECT id FROM chats WHERE direct_key = \(bind: key)").first()
                guard let row else { throw StoreError("the direct chat that won the race is missing") }
                return (try row.decode(column: "id", as: String.self), false)
            }
            // Opened by someone the other blocks: hidden from the blocker's list until they unblock.
            for (member, other) in [(userID, otherID), (otherID, userID)] {
                try await sql.raw(
                    """
                    INSERT INTO chat_members (chat_id, user_id, last_read_seq, joined_at, hidden)
                    VALUES (\(bind: id), \(bind: member), 0, \(bind: now),
                        EXISTS (SELECT 1 FROM blocks WHERE blocker_id = \(bind: member) AND blocked_id = \(bind: other)))
                    """
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
                let role = member == creator ? GroupRole.owner : .member
                try await sql.raw(
                    """
                    INSERT INTO chat_members (chat_id, user_id, last_read_seq, joined_at, role)
                    VALUES (\(bind: id), \(bind: member), 0, \(bind: now), \(bind: role.rawValue))
                    """
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

    /// The ids of a chat's members, and whether it is a direct chat in which one side blocks the other: one query.
    func membership(of chatID: String) async throws -> (members: [String], blocked: Bool) {
        try await self.database.read { sql in
            let rows = try await sql.raw(
                "SELECT m.user_id, c.blocked FROM chat_members m JOIN chats c ON c.id = m.chat_id WHERE m.chat_id = \(bind: chatID)"
            ).all()
            let blocked = try rows.first?.decode(column: "blocked", as: Int.self) ?? 0
            return (try rows.map { try $0.decode(column: "user_id", as: String.self) }, blocked != 0)
        }
    }

    /// The chats of `userID`, newest activity first, after the keyset (updatedAt, id); not a direct chat opened by someone
    /// they block.
    func chats(of userID: String, after cursor: (updatedAt: Int64, id: String)?, limit: Int) async throws -> [ChatRecord] {
        try await self.database.read { sql in
            var statement = SQLQueryString(
                "SELECT \(ChatRecord.columns) FROM chat_members me JOIN chats c ON c.id = me.chat_id WHERE me.user_id = \(bind: userID) AND NOT me.hidden"
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

    /// The direct chat of two people, if they have one.
    func directChat(between userID: String, and otherID: String) async throws -> String? {
        try await self.database.read { sql in
            try await sql.raw("SELECT id FROM chats WHERE direct_key = \(bind: Self.directKey(userID, otherID))").first()?.decode(
                column: "id",
                as: String.self
            )
        }
    }

    /// One chat, whoever is in it.
    func chat(_ chatID: String) async throws -> ChatRecord? {
        try await self.database.read { sql in
            try await sql.raw("SELECT \(ChatRecord.columns) FROM chats c WHERE c.id = \(bind: chatID)").first().map(ChatRecord.init(row:))
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
                SELECT chat_id, user_id, last_read_seq, role FROM chat_members
                WHERE chat_id IN (\(binds: chatIDs)) ORDER BY chat_id, joined_at, user_id
                """
            ).all().map { row in
                MemberRecord(
                    chatID: try row.decode(column: "chat_id", as: String.self),
                    userID: try row.decode(column: "user_id", as: String.self),
                    lastReadSeq: try row.decode(column: "last_read_seq", as: Int64.self),
                    role: GroupRole(rawValue: try row.decode(column: "role", as: String.self)) ?? .member
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
                SELECT \(MessageRecord.columns) FROM chats c JOIN messages m ON m.chat_id = c.id AND m.seq = c.last_seq \(MessageRecord.joins)
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
                SELECT \(MessageRecord.columns) FROM messages m \(MessageRecord.joins)
                WHERE m.chat_id = \(bind: chatID) AND m.sender_id = \(bind: senderID) AND m.client_message_id = \(bind: clientMessageID)
                """
            ).first().map(MessageRecord.init(row:))
        }
    }

    /// A page of messages in ascending seq holding `seq`: up to `limit / 2` older ones, the rest newer; whether older and
    /// newer ones were left out.
    func messages(in chatID: String, around seq: Int64, limit: Int) async throws -> (records: [MessageRecord], olderLeft: Bool, newerLeft: Bool) {
        let older = try await self.messages(in: chatID, before: seq, after: nil, limit: limit / 2)
        let newer = try await self.messages(in: chatID, before: nil, after: seq - 1, limit: limit - older.records.count)
        return (older.records + newer.records, older.hasMore, newer.hasMore)
    }

    /// A page of messages in ascending seq: the latest, or those before/after a seq. `hasMore` says whether the page was cut.
    func messages(in chatID: String, before: Int64?, after: Int64?, limit: Int) async throws -> (records: [MessageRecord], hasMore: Bool) {
        try await self.database.read { sql in
            let select = SQLQueryString("SELECT \(MessageRecord.columns) FROM messages m \(MessageRecord.joins) WHERE m.chat_id = \(bind: chatID)")
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

    /// Moves many members' read pointers forward in one transaction, one statement per 500 of them (each never past its
    /// chat's last message, never back), and returns those that moved, as they are now. Pointers of people no longer
    /// members move nothing.
    func markRead(_ pointers: [(chatID: String, pointer: ReadPointer)]) async throws -> [(chatID: String, pointer: ReadPointer)] {
        guard !pointers.isEmpty else { return [] }
        return try await self.database.transaction { sql in
            var moved: [(chatID: String, pointer: ReadPointer)] = []
            for slice in pointers.slices(of: 500) {
                let values = slice.map {
                    SQLQueryString("(\(bind: $0.chatID), \(bind: $0.pointer.userID), \(bind: $0.pointer.seq))")
                }.joined(separator: ", ")
                // VALUES columns are column1… on both databases; the target's columns stay unambiguous for RETURNING.
                let rows = try await sql.raw(
                    """
                    UPDATE chat_members SET last_read_seq = v.rseq
                    FROM (
                        SELECT x.column1 AS cid, x.column2 AS uid,
                               CASE WHEN c.last_seq < x.column3 THEN c.last_seq ELSE x.column3 END AS rseq
                        FROM (VALUES \(values)) AS x JOIN chats c ON c.id = x.column1
                    ) AS v
                    WHERE chat_members.chat_id = v.cid AND chat_members.user_id = v.uid AND chat_members.last_read_seq < v.rseq
                    RETURNING chat_id, user_id, last_read_seq
                    """
                ).all()
                for row in rows {
                    let pointer = ReadPointer(
                        userID: try row.decode(column: "user_id", as: String.self),
                        seq: try row.decode(column: "last_read_seq", as: Int64.self)
                    )
                    moved.append((try row.decode(column: "chat_id", as: String.self), pointer))
                }
            }
            return moved
        }
    }

    /// Whether `userID` is a member of `chatID`.
    func isMember(_ userID: String, of chatID: String) async throws -> Bool {
        try await self.database.read { sql in
            try await sql.raw("SELECT 1 AS one FROM chat_members WHERE chat_id = \(bind: chatID) AND user_id = \(bind: userID)").first() != nil
        }
    }

    /// The first and last version of every chat's changes made since `millis`, for catching up after the bus was away.
    func recentVersionRanges(since millis: Int64) async throws -> [(chatID: String, firstVersion: Int64, lastVersion: Int64)] {
        try await self.database.read { sql in
            try await sql.raw(
                "SELECT chat_id, MIN(version) AS first_version, MAX(version) AS last_version FROM messages WHERE changed_at >= \(bind: millis) GROUP BY chat_id"
            ).all().map { row in
                (
                    try row.decode(column: "chat_id", as: String.self), try row.decode(column: "first_version", as: Int64.self),
                    try row.decode(column: "last_version", as: Int64.self)
                )
            }
        }
    }

    /// The messages of `chatID` whose latest change has a version in `(after, through]`, in version order, each in its
    /// latest state; `hasMore` says whether the page was cut.
    func changes(in chatID: String, after: Int64, through: Int64, limit: Int) async throws -> (records: [MessageRecord], hasMore: Bool) {
        try await self.database.read { sql in
            let rows = try await sql.raw(
                """
                SELECT \(MessageRecord.columns) FROM messages m \(MessageRecord.joins)
                WHERE m.chat_id = \(bind: chatID) AND m.version > \(bind: after) AND m.version <= \(bind: through)
                ORDER BY m.version ASC LIMIT \(bind: limit + 1)
                """
            ).all().map(MessageRecord.init(row:))
            return (Array(rows.prefix(limit)), rows.count > limit)
        }
    }

    /// The chat's change version, if `userID` is a member.
    func version(of chatID: String, visibleTo userID: String) async throws -> Int64? {
        try await self.chat(chatID, visibleTo: userID)?.version
    }

    /// How many messages after `userID`'s read pointer mention them, in each of `chatIDs` (chats with none are missing).
    func mentionCounts(of userID: String, in chatIDs: [String]) async throws -> [String: Int64] {
        try await self.countsPerChat(
            chatIDs,
            """
            SELECT mm.chat_id, COUNT(*) AS n FROM message_mentions mm
            JOIN chat_members me ON me.chat_id = mm.chat_id AND me.user_id = mm.user_id
            WHERE mm.user_id = \(bind: userID) AND mm.chat_id IN (\(binds: chatIDs)) AND mm.seq > me.last_read_seq
            GROUP BY mm.chat_id
            """
        )
    }

    /// How many messages after `userID`'s read pointer are kept from them (written by someone they block), in each of
    /// `chatIDs` (chats with none are missing): their unread count leaves them out.
    func hiddenCounts(of userID: String, in chatIDs: [String]) async throws -> [String: Int64] {
        try await self.countsPerChat(
            chatIDs,
            """
            SELECT m.chat_id, COUNT(*) AS n FROM messages m
            JOIN chat_members me ON me.chat_id = m.chat_id AND me.user_id = m.hidden_from
            WHERE m.hidden_from = \(bind: userID) AND m.chat_id IN (\(binds: chatIDs)) AND m.seq > me.last_read_seq
            GROUP BY m.chat_id
            """
        )
    }

    /// The rows (`chat_id`, `n`) of `statement`, a count per chat of `chatIDs`, as a dictionary.
    private func countsPerChat(_ chatIDs: [String], _ statement: SQLQueryString) async throws -> [String: Int64] {
        guard !chatIDs.isEmpty else { return [:] }
        return try await self.database.read { sql in
            var counts: [String: Int64] = [:]
            for row in try await sql.raw(statement).all() {
                counts[try row.decode(column: "chat_id", as: String.self)] = try row.decode(column: "n", as: Int64.self)
            }
            return counts
        }
    }

    /// What `userID`'s contacts are made of (see ``MembershipCache/contacts(of:)``): the chats they are a member of, the
    /// people they block or are blocked by, and the members of those of the chats for which `known` has none (one read).
    func contactSources(of userID: String, known: (String) -> [String]?) async throws -> ContactSources {
        try await self.database.read { sql in
            var sources = ContactSources()
            let chatIDs = try await sql.raw("SELECT chat_id FROM chat_members WHERE user_id = \(bind: userID)").all().map {
                try $0.decode(column: "chat_id", as: String.self)
            }
            var unknown: [String] = []
            for chatID in chatIDs {
                if let members = known(chatID) { sources.members.append(members) } else { unknown.append(chatID) }
            }
            // In slices, so someone with thousands of chats never builds one enormous statement.
            for slice in unknown.slices(of: 500) {
                var bySlice: [String: [String]] = [:]
                for row in try await sql.raw("SELECT chat_id, user_id FROM chat_members WHERE chat_id IN (\(binds: Array(slice)))").all() {
                    bySlice[try row.decode(column: "chat_id", as: String.self), default: []].append(
                        try row.decode(column: "user_id", as: String.self)
                    )
                }
                sources.members += bySlice.values
            }
            let blocks = try await sql.raw(
                """
                SELECT blocked_id AS other FROM blocks WHERE blocker_id = \(bind: userID)
                UNION SELECT blocker_id AS other FROM blocks WHERE blocked_id = \(bind: userID)
                """
            ).all()
            sources.blocked = Set(try blocks.map { try $0.decode(column: "other", as: String.self) })
            return sources
        }
    }
}

/// See ``ChatStore/contactSources(of:known:)``.
struct ContactSources {
    /// The members of each of the person's chats.
    var members: [[String]] = []
    /// Who blocks them or is blocked by them.
    var blocked = Set<String>()
}
