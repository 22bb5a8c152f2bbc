import Foundation
import ParleyCore
import ParleyStore
import SQLKit

/// What missed-message mail needs from the chat tables, and the `missed_mail` table it keeps: every statement on them.
extension ChatStore {
    /// A user something is waiting to be mailed to.
    struct MissedMailDue: Sendable, Equatable {
        var userID: String
        /// The oldest waiting message's time.
        var pendingSince: Int64
        /// The trace of the send that made the mail owed, when it had one: the mail continues it.
        var trace: TraceParent? = nil
    }

    /// A message, by chat and seq.
    struct UnreadKey: Hashable, Sendable {
        var chatID: String
        var seq: Int64
    }

    /// An unread direct message or mention.
    struct UnreadItem: Sendable, Equatable, Codable {
        var chatID: String
        /// The group's name; nil for a direct chat.
        var chatName: String?
        var seq: Int64
        var senderID: String
        var kind: String
        var text: String?
        var createdAt: Int64
    }

    /// Marks the recipients of `created` as owed a mail unless something already waits for them: the other member of a
    /// direct chat (those of `directChats`), and whoever a message mentions. The mark keeps the trace (of `traces`, by
    /// message id) of the first message that made it, which the mail continues. At most one statement per batch, none
    /// for a batch of group messages without mentions; a recipient already waiting costs no write.
    static func notePendingMail(
        for created: [MessageRecord],
        traces: [String: TraceParent],
        directChats: Set<String>,
        in sql: any SQLDatabase
    ) async throws {
        // A message kept from the blocker (the other member of its direct chat) is owed to no one.
        let direct = created.filter { directChats.contains($0.chatID) && $0.hiddenFrom == nil }
        let mentions = created.filter { !directChats.contains($0.chatID) }.flatMap { record in
            record.mentions.filter { $0 != record.senderID }.map {
                SQLQueryString("(\(bind: $0), \(bind: record.createdAt), \(bind: traces[record.id]?.header))")
            }
        }
        var parts: [SQLQueryString] = []
        if !direct.isEmpty {
            let sends = direct.map {
                SQLQueryString("(\(bind: $0.chatID), \(bind: $0.senderID), \(bind: $0.createdAt), \(bind: traces[$0.id]?.header))")
            }
            parts.append(
                """
                SELECT cm.user_id AS user_id, v.column3 AS created_at, v.column4 AS trace_parent FROM (VALUES \(SQLList(sends))) AS v
                JOIN chat_members cm ON cm.chat_id = v.column1 AND cm.user_id <> v.column2
                """
            )
        }
        if !mentions.isEmpty {
            parts.append("SELECT column1 AS user_id, column2 AS created_at, column3 AS trace_parent FROM (VALUES \(SQLList(mentions))) AS w")
        }
        guard !parts.isEmpty else { return }
        // Each recipient's first message of the batch, with its trace. The trace is set with `pending_since` and under the
        // same condition: a later message does not take over the trace of a mail already owed. (`WHERE n = 1` also
        // gives SQLite's parser the WHERE it needs before an upsert's ON CONFLICT.)
        try await sql.raw(
            """
            INSERT INTO missed_mail (user_id, pending_since, trace_parent)
            SELECT user_id, created_at, trace_parent FROM (
                SELECT r.user_id, r.created_at, r.trace_parent, ROW_NUMBER() OVER (PARTITION BY r.user_id ORDER BY r.created_at) AS n
                FROM (\(SQLList(parts, separator: SQLRaw(" UNION ALL ")))) AS r
            ) AS f WHERE n = 1
            ON CONFLICT (user_id) DO UPDATE SET pending_since = excluded.pending_since, trace_parent = excluded.trace_parent
            WHERE missed_mail.pending_since IS NULL
            """
        ).run()
    }

    /// Users whose oldest waiting message is from `cutoff` or before and who were last mailed before `sentBefore` (or
    /// never), oldest waiting first.
    func missedMailDue(cutoff: Int64, sentBefore: Int64, limit: Int) async throws -> [MissedMailDue] {
        try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT user_id, pending_since, trace_parent FROM missed_mail
                WHERE pending_since IS NOT NULL AND pending_since <= \(bind: cutoff) AND (last_sent_at IS NULL OR last_sent_at < \(bind: sentBefore))
                ORDER BY pending_since LIMIT \(bind: limit)
                """
            ).all().map { row in
                MissedMailDue(
                    userID: try row.decode(column: "user_id", as: String.self),
                    pendingSince: try row.decode(column: "pending_since", as: Int64.self),
                    // Only what Parley wrote is continued: anything else starts a new trace.
                    trace: try row.decode(column: "trace_parent", as: String?.self).flatMap(TraceParent.init(header:))
                )
            }
        }
    }

    /// `userID`'s unread direct messages and mentions that no mail has dealt with, oldest first, at most `limit`: deleted
    /// and system messages, and one's own, are not among them.
    func unreadForMail(of userID: String, limit: Int) async throws -> [UnreadItem] {
        try await self.database.read { sql in try await Self.unreadForMail(of: userID, limit: limit, in: sql) }
    }

    /// ``unreadForMail(of:limit:)`` in the caller's transaction.
    static func unreadForMail(of userID: String, limit: Int, in sql: any SQLDatabase) async throws -> [UnreadItem] {
        try await sql.raw(
            """
            SELECT * FROM (
                SELECT m.chat_id, c.kind AS chat_kind, c.name AS chat_name, m.seq, m.sender_id, m.kind, m.text, m.created_at
                FROM chat_members cm JOIN chats c ON c.id = cm.chat_id
                JOIN messages m ON m.chat_id = cm.chat_id AND m.seq > cm.last_read_seq AND m.seq > cm.mailed_seq
                WHERE cm.user_id = \(bind: userID) AND c.kind = 'direct' AND m.sender_id <> \(bind: userID)
                    AND m.kind NOT IN ('deleted', 'system') AND m.hidden_from IS NULL
                UNION ALL
                SELECT m.chat_id, c.kind AS chat_kind, c.name AS chat_name, m.seq, m.sender_id, m.kind, m.text, m.created_at
                FROM message_mentions mm JOIN chat_members cm ON cm.chat_id = mm.chat_id AND cm.user_id = mm.user_id
                JOIN chats c ON c.id = mm.chat_id JOIN messages m ON m.chat_id = mm.chat_id AND m.seq = mm.seq
                WHERE mm.user_id = \(bind: userID) AND c.kind <> 'direct' AND mm.seq > cm.last_read_seq AND mm.seq > cm.mailed_seq
                    AND m.sender_id <> \(bind: userID) AND m.kind NOT IN ('deleted', 'system')
            ) AS u ORDER BY created_at, chat_id, seq LIMIT \(bind: limit)
            """
        ).all().map { row in
            UnreadItem(
                chatID: try row.decode(column: "chat_id", as: String.self),
                chatName: try row.decode(column: "chat_kind", as: String.self) == "direct"
                    ? nil : try row.decode(column: "chat_name", as: String?.self),
                seq: try row.decode(column: "seq", as: Int64.self),
                senderID: try row.decode(column: "sender_id", as: String.self),
                kind: try row.decode(column: "kind", as: String.self),
                text: try row.decode(column: "text", as: String?.self),
                createdAt: try row.decode(column: "created_at", as: Int64.self)
            )
        }
    }

    /// Which of `items` `userID` has still not read (and still can: a member, the message not deleted).
    func stillUnread(_ items: [(chatID: String, seq: Int64)], by userID: String) async throws -> Set<UnreadKey> {
        guard !items.isEmpty else { return [] }
        let chatIDs = Array(Set(items.map(\.chatID))).sorted()
        let pointers = try await self.database.read { sql in
            try await sql.raw(
                "SELECT chat_id, last_read_seq FROM chat_members WHERE user_id = \(bind: userID) AND chat_id IN (\(binds: chatIDs))"
            ).all().map { (try $0.decode(column: "chat_id", as: String.self), try $0.decode(column: "last_read_seq", as: Int64.self)) }
        }
        let readUpTo = Dictionary(pointers, uniquingKeysWith: max)
        return Set(
            items.filter { item in readUpTo[item.chatID].map { item.seq > $0 } ?? false }.map { UnreadKey(chatID: $0.chatID, seq: $0.seq) }
        )
    }

    /// Takes `due` for this instance, in the caller's transaction: true when no other instance took it since it was
    /// read (it still waits since the same time, and was not mailed in the period). The row stays locked (PostgreSQL; on
    /// SQLite the transaction is the one writer) until the transaction ends, so no message can come in between unseen.
    static func takeMissedMail(_ due: MissedMailDue, sentBefore: Int64, in sql: any SQLDatabase) async throws -> Bool {
        !(try await sql.raw(
            """
            UPDATE missed_mail SET user_id = user_id
            WHERE user_id = \(bind: due.userID) AND pending_since = \(bind: due.pendingSince)
                AND (last_sent_at IS NULL OR last_sent_at < \(bind: sentBefore))
            RETURNING user_id
            """
        ).all().isEmpty)
    }

    /// Records what became of a taken `userID`: the messages dealt with (mailed, or settled because mail is off), since
    /// when something still waits (nil: nothing), and when a mail went (nil: none did, the last one stands). The trace
    /// kept goes: it was that of the send that made the mail just dealt with owed; a message still waiting was sent in a
    /// trace not kept, so its mail starts a new one (and the next message owed after this keeps its own).
    static func recordMissedMail(
        of userID: String,
        dealtWith: [UnreadItem],
        stillPendingSince: Int64?,
        sentAt: Int64?,
        in sql: any SQLDatabase
    ) async throws {
        var lastSeq: [String: Int64] = [:]
        for item in dealtWith {
            lastSeq[item.chatID] = max(lastSeq[item.chatID] ?? 0, item.seq)
        }
        for (chatID, seq) in lastSeq.sorted(by: { $0.key < $1.key }) {
            try await sql.raw(
                """
                UPDATE chat_members SET mailed_seq = \(bind: seq)
                WHERE chat_id = \(bind: chatID) AND user_id = \(bind: userID) AND mailed_seq < \(bind: seq)
                """
            ).run()
        }
        try await sql.raw(
            """
            UPDATE missed_mail SET pending_since = \(bind: stillPendingSince), trace_parent = NULL,
                last_sent_at = COALESCE(\(bind: sentAt), last_sent_at)
            WHERE user_id = \(bind: userID)
            """
        ).run()
    }
}
