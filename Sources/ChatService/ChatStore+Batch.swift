import Foundation
import ParleyCore
import ParleyStore
import SQLKit

/// The one way messages are stored: the send transaction below. A single send is a batch of one; the history seeder
/// takes seqs and inserts rows with the same two statements.
extension ChatStore {
    /// A message to store, as a sender asked for it.
    struct MessageDraft: Sendable {
        var chatID: String
        var senderID: String
        var text: String?
        var file: FileRecord?
        var clientMessageID: String?
        var now: Int64
    }

    /// What sending a message led to.
    enum AppendOutcome: Sendable {
        case created(MessageRecord)
        case duplicate(MessageRecord)
        case notMember
    }

    /// Stores one message on its own: a batch of one.
    func append(_ draft: MessageDraft) async throws -> AppendOutcome {
        do {
            return try await self.append([draft])[0]
        } catch {
            // Two sends of one clientMessageId at the same moment: the loser's insert hits the unique index and rolls back
            // whole (its seq with it); the message the winner stored is the answer.
            guard let clientMessageID = draft.clientMessageID,
                let stored = try await self.message(in: draft.chatID, sentBy: draft.senderID, clientMessageID: clientMessageID)
            else { throw error }
            return .duplicate(stored)
        }
    }

    /// Stores one message on its own (see ``append(_:)-(MessageDraft)``).
    func append(
        chatID: String,
        senderID: String,
        text: String?,
        file: FileRecord?,
        clientMessageID: String?,
        now: Int64
    ) async throws -> AppendOutcome {
        try await self.append(MessageDraft(chatID: chatID, senderID: senderID, text: text, file: file, clientMessageID: clientMessageID, now: now))
    }

    /// Stores many messages in one transaction with a fixed number of statements, whatever their number: the outcome of
    /// each draft, in order. Seqs follow the drafts' order within each chat; a repeated clientMessageId within the batch
    /// is a duplicate of its first occurrence. Throws (and stores nothing) if any statement fails.
    func append(_ drafts: [MessageDraft]) async throws -> [AppendOutcome] {
        guard !drafts.isEmpty else { return [] }
        return try await self.database.transaction { sql in
            let chatIDs = Array(Set(drafts.map(\.chatID))).sorted()
            let senderIDs = Array(Set(drafts.map(\.senderID)))
            let memberRows = try await sql.raw(
                "SELECT chat_id, user_id FROM chat_members WHERE chat_id IN (\(binds: chatIDs)) AND user_id IN (\(binds: senderIDs))"
            ).all()
            var members = Set<PairKey>()
            for row in memberRows {
                members.insert(
                    PairKey(chatID: try row.decode(column: "chat_id", as: String.self), userID: try row.decode(column: "user_id", as: String.self))
                )
            }

            let clientIDs = Array(Set(drafts.compactMap(\.clientMessageID)))
            var stored: [ClientKey: MessageRecord] = [:]
            if !clientIDs.isEmpty {
                // All three columns of the unique index: without sender_id the lookup walks every message of the chats.
                let rows = try await sql.raw(
                    """
                    SELECT \(MessageRecord.columns) FROM messages m \(MessageRecord.fileJoin)
                    WHERE m.chat_id IN (\(binds: chatIDs)) AND m.sender_id IN (\(binds: senderIDs)) AND m.client_message_id IN (\(binds: clientIDs))
                    """
                ).all()
                for row in rows {
                    let record = try MessageRecord(row: row)
                    if let clientID = record.clientMessageID {
                        stored[ClientKey(chatID: record.chatID, senderID: record.senderID, clientMessageID: clientID)] = record
                    }
                }
            }

            // What each draft becomes; new ones are counted per chat before any seq is taken.
            enum Plan {
                case done(AppendOutcome)
                case create
                case sameAs(Int)
            }
            var plans: [Plan] = []
            var newPerChat: [String: Int64] = [:]
            var firstInBatch: [ClientKey: Int] = [:]
            for (index, draft) in drafts.enumerated() {
                if !members.contains(PairKey(chatID: draft.chatID, userID: draft.senderID)) {
                    plans.append(.done(.notMember))
                    continue
                }
                if let clientID = draft.clientMessageID {
                    let key = ClientKey(chatID: draft.chatID, senderID: draft.senderID, clientMessageID: clientID)
                    if let record = stored[key] {
                        plans.append(.done(.duplicate(record)))
                        continue
                    }
                    if let first = firstInBatch[key] {
                        plans.append(.sameAs(first))
                        continue
                    }
                    firstInBatch[key] = index
                }
                plans.append(.create)
                newPerChat[draft.chatID, default: 0] += 1
            }
            guard !newPerChat.isEmpty else {
                return plans.map { if case .done(let outcome) = $0 { outcome } else { .notMember } }
            }

            var seqs = try await Self.takeSeqs(newPerChat, now: drafts.map(\.now).max() ?? 0, in: sql)

            var outcomes: [AppendOutcome] = []
            var created: [MessageRecord] = []
            for (index, plan) in plans.enumerated() {
                switch plan {
                case .done(let outcome):
                    outcomes.append(outcome)
                case .sameAs(let first):
                    // A replay racing its original within one batch gets the original's answer.
                    if case .created(let record) = outcomes[first] {
                        outcomes.append(.duplicate(record))
                    } else {
                        outcomes.append(outcomes[first])
                    }
                case .create:
                    let draft = drafts[index]
                    // A chat deleted under the batch has no row to move: its senders are no longer members.
                    guard let seq = seqs[draft.chatID] else {
                        outcomes.append(.notMember)
                        continue
                    }
                    seqs[draft.chatID] = seq + 1
                    let record = MessageRecord(
                        id: Identifier.make(),
                        chatID: draft.chatID,
                        seq: seq,
                        senderID: draft.senderID,
                        kind: draft.file == nil ? "text" : "image",
                        text: draft.text,
                        fileID: draft.file?.id,
                        clientMessageID: draft.clientMessageID,
                        createdAt: draft.now,
                        file: draft.file
                    )
                    created.append(record)
                    outcomes.append(.created(record))
                }
            }

            try await Self.insert(created, in: sql)
            for record in created {
                if let fileID = record.fileID { try await FileStore.attach(fileID, toChat: record.chatID, in: sql) }
            }

            // A sender has read what they sent: one statement moves every sender's read pointer to their last new seq.
            var readUpTo: [PairKey: Int64] = [:]
            for record in created {
                readUpTo[PairKey(chatID: record.chatID, userID: record.senderID)] = record.seq
            }
            let pointers = readUpTo.sorted { ($0.key.chatID, $0.key.userID) < ($1.key.chatID, $1.key.userID) }.map {
                SQLQueryString("(\(bind: $0.key.chatID), \(bind: $0.key.userID), \(bind: $0.value))")
            }
            try await sql.raw(
                """
                UPDATE chat_members SET last_read_seq = v.column3 FROM (VALUES \(SQLList(pointers))) AS v
                WHERE chat_members.chat_id = v.column1 AND chat_members.user_id = v.column2 AND chat_members.last_read_seq < v.column3
                """
            ).run()
            return outcomes
        }
    }

    /// Appends `count` messages to `chatID` as history, in one transaction of two statements whatever their number: the
    /// seqs, then the rows (made by `message` from each seq and its position in the batch). Read pointers stay where they
    /// are. Returns the chat's last seq, or nil when there is no such chat.
    func appendHistory(to chatID: String, count: Int, now: Int64, message: (_ seq: Int64, _ position: Int) -> MessageRecord) async throws -> Int64? {
        try await self.database.transaction { sql in
            // Messages sent meanwhile still get dense seqs after these: the seqs are taken as a send takes them.
            guard let first = try await Self.takeSeqs([chatID: Int64(count)], now: now, in: sql)[chatID] else { return nil }
            let last = first + Int64(count) - 1
            try await Self.insert((0..<count).map { message(first + Int64($0), $0) }, in: sql)
            return last
        }
    }

    /// Moves every chat's `last_seq` by its count in one statement and returns each moved chat's first new seq: taken under
    /// each chat's row lock (PostgreSQL) or the one writer (SQLite), the seqs `[last - count + 1, last]` belong to this
    /// transaction alone and stay dense. A chat that does not exist is missing from the answer.
    static func takeSeqs(_ counts: [String: Int64], now: Int64, in sql: any SQLDatabase) async throws -> [String: Int64] {
        // In id order: the UPDATE's join visits the VALUES in this order and locks the chats as it goes, so batches of
        // several instances take their chat locks in one order and never wait on each other in a cycle (a test on
        // PostgreSQL checks that two instances' writers cause no deadlock).
        let values = counts.keys.sorted().map { SQLQueryString("(\(bind: $0), \(bind: counts[$0]!))") }
        let moved = try await sql.raw(
            """
            UPDATE chats SET last_seq = last_seq + v.column2, updated_at = \(bind: now)
            FROM (VALUES \(SQLList(values))) AS v WHERE chats.id = v.column1 RETURNING id, last_seq
            """
        ).all()
        var first: [String: Int64] = [:]
        for row in moved {
            let chatID = try row.decode(column: "id", as: String.self)
            first[chatID] = try row.decode(column: "last_seq", as: Int64.self) - counts[chatID, default: 0] + 1
        }
        return first
    }

    /// Inserts `records` with one multi-row statement: the only `INSERT INTO messages`.
    static func insert(_ records: [MessageRecord], in sql: any SQLDatabase) async throws {
        guard !records.isEmpty else { return }
        // A column every row leaves empty is left out: binds cost more than rows (history is inserted 1,000 rows at a time).
        let withFile = records.contains { $0.fileID != nil }
        let withClientID = records.contains { $0.clientMessageID != nil }
        let rows = records.map { record in
            var row = SQLQueryString("(\(bind: record.id), \(bind: record.chatID), \(bind: record.seq), \(bind: record.senderID)")
            row = SQLQueryString("\(row), \(bind: record.kind), \(bind: record.text)")
            if withFile { row = SQLQueryString("\(row), \(bind: record.fileID)") }
            if withClientID { row = SQLQueryString("\(row), \(bind: record.clientMessageID)") }
            return SQLQueryString("\(row), \(bind: record.createdAt))")
        }
        let columns =
            "id, chat_id, seq, sender_id, kind, text" + (withFile ? ", file_id" : "") + (withClientID ? ", client_message_id" : "")
            + ", created_at"
        try await sql.raw("INSERT INTO messages (\(unsafeRaw: columns)) VALUES \(SQLList(rows))").run()
    }
}

/// A member of a chat, as a set key.
private struct PairKey: Hashable {
    var chatID: String
    var userID: String
}

/// A message's idempotency key: idempotency is per chat and sender.
private struct ClientKey: Hashable {
    var chatID: String
    var senderID: String
    var clientMessageID: String
}
