import Foundation
import ParleyCore
import ParleyStore
import SQLKit

/// The one way messages are stored and changed: the write transaction below. A single send or change is a batch of one;
/// the history seeder takes seqs and inserts rows with the same statements.
extension ChatStore {
    /// A message to store, as a sender asked for it.
    struct MessageDraft: Sendable {
        var chatID: String
        var senderID: String
        var text: String?
        var file: FileRecord?
        var clientMessageID: String?
        /// The message of the same chat this one answers.
        var replyToSeq: Int64? = nil
        /// The ids the text mentions (`<@id>`); those who are members are kept.
        var mentionCandidates: [String] = []
        var now: Int64
        /// The trace of the request that sent it, read in the request's task (the writer's transaction runs on its own):
        /// a missed-message mail this message makes owed continues it.
        var trace: TraceParent? = nil
    }

    /// A change to a stored message, as a member asked for it.
    struct MessageChange: Sendable {
        enum Action: Sendable, Equatable {
            /// New text (validated), and the ids it mentions.
            case edit(text: String, mentionCandidates: [String])
            /// Erases the message, leaving its tombstone.
            case delete
            /// Adds (`on`) or removes the caller's reaction `emoji` (validated).
            case react(emoji: String, on: Bool)
        }

        var chatID: String
        var seq: Int64
        var userID: String
        var action: Action
        var now: Int64
    }

    /// One write a batch carries.
    enum Write: Sendable {
        case send(MessageDraft)
        case change(MessageChange)

        var chatID: String {
            switch self {
            case .send(let draft): draft.chatID
            case .change(let change): change.chatID
            }
        }

        /// Whether it erases a message (the one write a blocker still makes in a blocked direct chat).
        var isDeletion: Bool {
            if case .change(let change) = self { change.action == .delete } else { false }
        }

        /// Who asked for it.
        var userID: String {
            switch self {
            case .send(let draft): draft.senderID
            case .change(let change): change.userID
            }
        }
    }

    /// What a write led to.
    enum WriteOutcome: Sendable {
        /// A new message, with the chat's next seq and version.
        case created(MessageRecord)
        /// A send whose clientMessageId the sender used before: the stored message.
        case duplicate(MessageRecord)
        /// A change, with the chat's next version; `erasedFiles` are the files (a deleted message's file and its
        /// thumbnail) whose bytes are to be erased after the commit.
        case changed(MessageRecord, erasedFiles: [String])
        /// A change that changed nothing (the same text, a reaction already there, a second delete): the message as it is.
        case unchanged(MessageRecord)
        /// The writer is not a member of the chat (or there is no such chat).
        case notMember
        /// Refused for a reason the caller is told.
        case refused(ChatError)
    }

    /// The most distinct emoji on one message, and reactions of one person on one message.
    static let maxEmojiPerMessage = 20
    static let maxReactionsPerUser = 10

    /// Stores one message on its own: a batch of one.
    func append(_ draft: MessageDraft) async throws -> WriteOutcome {
        try await self.write(.send(draft))
    }

    /// Stores one message on its own (see ``append(_:)-(MessageDraft)``).
    func append(
        chatID: String,
        senderID: String,
        text: String?,
        file: FileRecord?,
        clientMessageID: String?,
        now: Int64
    ) async throws -> WriteOutcome {
        try await self.append(MessageDraft(chatID: chatID, senderID: senderID, text: text, file: file, clientMessageID: clientMessageID, now: now))
    }

    /// Carries out one write on its own: a batch of one.
    func write(_ write: Write) async throws -> WriteOutcome {
        do {
            return try await self.write([write])[0]
        } catch {
            // Two sends of one clientMessageId at the same moment: the loser's insert hits the unique index and rolls back
            // whole (its seq with it); the message the winner stored is the answer.
            guard case .send(let draft) = write, let clientMessageID = draft.clientMessageID,
                let stored = try await self.message(in: draft.chatID, sentBy: draft.senderID, clientMessageID: clientMessageID)
            else { throw error }
            return .duplicate(stored)
        }
    }

    /// Stores many messages in one transaction (see ``write(_:)-([Write])``).
    func append(_ drafts: [MessageDraft]) async throws -> [WriteOutcome] {
        try await self.write(drafts.map(Write.send))
    }

    /// Carries out many sends and changes in one transaction, in order: the outcome of each. New messages take the
    /// chat's next seqs, and every new message and every change that changes something takes the chat's next version,
    /// in the writes' order, densely. Sends cost a fixed number of statements whatever their number; a change costs a
    /// statement or two. A repeated clientMessageId within the batch is a duplicate of its first occurrence. Throws (and
    /// stores nothing) if any statement fails.
    func write(_ writes: [Write]) async throws -> [WriteOutcome] {
        guard !writes.isEmpty else { return [] }
        // Ahead of other writers' waiting transactions: a flood of sign-ins does not queue in front of a conversation.
        return try await self.database.transaction(priority: true) { sql in
            var batch = Batch(writes: writes)
            try await batch.readMembership(in: sql)
            try await batch.readStoredClientIDs(in: sql)
            batch.planSends()
            guard batch.touchesAnyChat else { return batch.finishedOutcomes() }

            // The chats' rows are locked from here on (PostgreSQL) or this is the one writer (SQLite): the messages read
            // next cannot change under this transaction, and the seqs and versions taken are this transaction's alone.
            let firsts = try await Self.takeSeqs(batch.newPerChat, versions: batch.versionsPerChat, now: batch.latest, in: sql)
            // PostgreSQL: a group change (another instance's too) commits under the same row locks, so membership is read
            // again now that they are held: a member removed while this batch waited for them no longer writes.
            if self.database.dialect == .postgres { try await batch.readMembership(in: sql, again: true) }
            try await batch.readTargets(in: sql)
            batch.apply(firsts: firsts)

            try await Self.insert(batch.created, in: sql)
            for record in batch.created {
                if let fileID = record.fileID { try await FileStore.attach(fileID, toChat: record.chatID, in: sql) }
            }
            try await Self.insertMentions(of: batch.created, in: sql)
            try await Self.notePendingMail(for: batch.created, traces: batch.traces, directChats: batch.directChats, in: sql)
            for (record, erasedFiles) in batch.changed {
                try await Self.update(record, in: sql)
                // The thumbnail's row goes with its image's.
                if let erasedFile = erasedFiles.first { try await FileStore.forget(erasedFile, in: sql) }
            }
            try await batch.giveBackUnused(firsts: firsts, in: sql)
            try await Self.moveSendersReadPointers(past: batch.created, in: sql)
            return batch.outcomes.map { $0 ?? .notMember }
        }
    }

    /// Appends `count` messages to `chatID` as history, in one transaction of two statements whatever their number: the
    /// seqs, then the rows (made by `message` from each seq and its position in the batch). Read pointers stay where they
    /// are. Returns the chat's last seq, or nil when there is no such chat.
    func appendHistory(to chatID: String, count: Int, now: Int64, message: (_ seq: Int64, _ position: Int) -> MessageRecord) async throws -> Int64? {
        try await self.database.transaction { sql in
            // Messages sent meanwhile still get dense seqs after these: the seqs are taken as a send takes them.
            let counts = [chatID: Int64(count)]
            guard let first = try await Self.takeSeqs(counts, versions: counts, now: now, in: sql)[chatID] else { return nil }
            let last = first.seq + Int64(count) - 1
            try await Self.insert(
                (0..<count).map { position in
                    var record = message(first.seq + Int64(position), position)
                    record.version = first.version + Int64(position)
                    return record
                },
                in: sql
            )
            return last
        }
    }

    /// After a bulk load, what PostgreSQL's autovacuum does soon anyway, done at once so measurements start from the
    /// steady state: fresh statistics, and the GIN index's pending entries merged into it. Nothing to do on SQLite.
    func settleAfterBulkLoad() async throws {
        guard self.database.dialect == .postgres else { return }
        try await self.database.read { sql in try await sql.raw("VACUUM ANALYZE messages").run() }
    }

    /// Moves every chat's `last_seq` and `version` by its counts in one statement and returns each moved chat's first new
    /// seq and version: taken under each chat's row lock (PostgreSQL) or the one writer (SQLite), the seqs
    /// `[last - count + 1, last]` (and the versions likewise) belong to this transaction alone and stay dense. A chat that
    /// does not exist is missing from the answer. Only chats with new messages count as active (`updated_at`).
    static func takeSeqs(
        _ counts: [String: Int64],
        versions: [String: Int64],
        now: Int64,
        in sql: any SQLDatabase
    ) async throws -> [String: (seq: Int64, version: Int64)] {
        // In id order: the UPDATE's join visits the VALUES in this order and locks the chats as it goes, so batches of
        // several instances take their chat locks in one order and never wait on each other in a cycle (a test on
        // PostgreSQL checks that two instances' writers cause no deadlock).
        let chatIDs = Set(counts.keys).union(versions.keys).sorted()
        let values = chatIDs.map { SQLQueryString("(\(bind: $0), \(bind: counts[$0, default: 0]), \(bind: versions[$0, default: 0]))") }
        let moved = try await sql.raw(
            """
            UPDATE chats SET last_seq = last_seq + v.column2, version = version + v.column3,
                updated_at = CASE WHEN v.column2 > 0 THEN \(bind: now) ELSE updated_at END
            FROM (VALUES \(SQLList(values))) AS v WHERE chats.id = v.column1 RETURNING id, last_seq, version
            """
        ).all()
        var first: [String: (seq: Int64, version: Int64)] = [:]
        for row in moved {
            let chatID = try row.decode(column: "id", as: String.self)
            first[chatID] = (
                try row.decode(column: "last_seq", as: Int64.self) - counts[chatID, default: 0] + 1,
                try row.decode(column: "version", as: Int64.self) - versions[chatID, default: 0] + 1
            )
        }
        return first
    }

    /// Inserts `records` with one multi-row statement: the only `INSERT INTO messages`.
    static func insert(_ records: [MessageRecord], in sql: any SQLDatabase) async throws {
        guard !records.isEmpty else { return }
        // A column every row leaves empty is left out: binds cost more than rows (history is inserted 1,000 rows at a time).
        let withFile = records.contains { $0.fileID != nil }
        let withClientID = records.contains { $0.clientMessageID != nil }
        let withReply = records.contains { $0.replyToSeq != nil }
        let withMentions = records.contains { !$0.mentions.isEmpty }
        let withSystem = records.contains { $0.system != nil }
        let withHidden = records.contains { $0.hiddenFrom != nil }
        let rows = records.map { record in
            var row = SQLQueryString("(\(bind: record.id), \(bind: record.chatID), \(bind: record.seq), \(bind: record.senderID)")
            row = SQLQueryString("\(row), \(bind: record.kind), \(bind: record.text)")
            if withFile { row = SQLQueryString("\(row), \(bind: record.fileID)") }
            if withClientID { row = SQLQueryString("\(row), \(bind: record.clientMessageID)") }
            if withReply { row = SQLQueryString("\(row), \(bind: record.replyToSeq)") }
            if withMentions { row = SQLQueryString("\(row), \(bind: record.mentionsColumn)") }
            if withSystem { row = SQLQueryString("\(row), \(bind: record.systemColumn)") }
            if withHidden { row = SQLQueryString("\(row), \(bind: record.hiddenFrom)") }
            return SQLQueryString("\(row), \(bind: record.createdAt), \(bind: record.version), \(bind: record.changedAt))")
        }
        let columns =
            "id, chat_id, seq, sender_id, kind, text" + (withFile ? ", file_id" : "") + (withClientID ? ", client_message_id" : "")
            + (withReply ? ", reply_to_seq" : "") + (withMentions ? ", mentions" : "") + (withSystem ? ", system" : "")
            + (withHidden ? ", hidden_from" : "") + ", created_at, version, changed_at"
        try await sql.raw("INSERT INTO messages (\(unsafeRaw: columns)) VALUES \(SQLList(rows))").run()
    }

    /// Writes a changed message's state, and the mentions that count, over its row.
    static func update(_ record: MessageRecord, in sql: any SQLDatabase) async throws {
        try await sql.raw(
            """
            UPDATE messages SET kind = \(bind: record.kind), text = \(bind: record.text), file_id = \(bind: record.fileID),
                reply_to_seq = \(bind: record.replyToSeq), reactions = \(bind: record.reactionsColumn), mentions = \(bind: record.mentionsColumn),
                edited_at = \(bind: record.editedAt), version = \(bind: record.version), changed_at = \(bind: record.changedAt),
                kept_view = \(bind: record.keptColumn)
            WHERE id = \(bind: record.id)
            """
        ).run()
        try await sql.raw("DELETE FROM message_mentions WHERE chat_id = \(bind: record.chatID) AND seq = \(bind: record.seq)").run()
        try await Self.insertMentions(of: [record], in: sql)
    }

    /// Records who `records` mention, for their mention counts.
    static func insertMentions(of records: [MessageRecord], in sql: any SQLDatabase) async throws {
        let rows = records.flatMap { record in
            record.countedMentions.map { SQLQueryString("(\(bind: $0), \(bind: record.chatID), \(bind: record.seq))") }
        }
        guard !rows.isEmpty else { return }
        try await sql.raw("INSERT INTO message_mentions (user_id, chat_id, seq) VALUES \(SQLList(rows))").run()
    }

    /// A sender has read what they sent: one statement moves every sender's read pointer to their last new seq.
    static func moveSendersReadPointers(past created: [MessageRecord], in sql: any SQLDatabase) async throws {
        var readUpTo: [PairKey: Int64] = [:]
        for record in created {
            readUpTo[PairKey(chatID: record.chatID, userID: record.senderID)] = record.seq
        }
        guard !readUpTo.isEmpty else { return }
        let pointers = readUpTo.sorted { ($0.key.chatID, $0.key.userID) < ($1.key.chatID, $1.key.userID) }.map {
            SQLQueryString("(\(bind: $0.key.chatID), \(bind: $0.key.userID), \(bind: $0.value))")
        }
        try await sql.raw(
            """
            UPDATE chat_members SET last_read_seq = v.column3 FROM (VALUES \(SQLList(pointers))) AS v
            WHERE chat_members.chat_id = v.column1 AND chat_members.user_id = v.column2 AND chat_members.last_read_seq < v.column3
            """
        ).run()
    }
}

/// One batch inside its transaction: what each write finds, and what it becomes.
private struct Batch {
    let writes: [ChatStore.Write]
    /// Who of the writers and the mentioned people is a member of which chat.
    var members = Set<PairKey>()
    /// The direct chats of the batch in which one side blocks the other.
    var blockedChats = Set<String>()
    /// In those, a writer whom the other blocks (and who does not block them): what they write is kept from the other, the
    /// value. A writer who blocks the other is refused: nothing new goes in from them.
    var keptFrom: [PairKey: String] = [:]
    /// Which of the chats are direct: their messages are owed a missed-message mail.
    var directChats = Set<String>()
    var storedByClientID: [ClientKey: MessageRecord] = [:]
    /// Each write's outcome once known; nil while it is still to be carried out.
    var outcomes: [ChatStore.WriteOutcome?]
    /// For sends that repeat a clientMessageId of an earlier send in the batch: that send's index.
    var sameAs: [Int: Int] = [:]
    /// At most the seqs and versions each chat needs (refusals found later give theirs back).
    var newPerChat: [String: Int64] = [:]
    var versionsPerChat: [String: Int64] = [:]
    /// The stored messages the changes and replies name, as they stand while the batch goes.
    var targets: [MessageKey: MessageRecord] = [:]
    var created: [MessageRecord] = []
    /// The traces of the created messages' sends that had one, by message id.
    var traces: [String: TraceParent] = [:]
    var changed: [(MessageRecord, erasedFiles: [String])] = []
    /// Seqs and versions used per chat.
    var usedSeqs: [String: Int64] = [:]
    var usedVersions: [String: Int64] = [:]

    init(writes: [ChatStore.Write]) {
        self.writes = writes
        self.outcomes = Array(repeating: nil, count: writes.count)
    }

    var latest: Int64 {
        self.writes.map { write in
            switch write {
            case .send(let draft): draft.now
            case .change(let change): change.now
            }
        }.max() ?? 0
    }

    var touchesAnyChat: Bool { !self.versionsPerChat.isEmpty }

    /// The outcomes when nothing is to be written.
    func finishedOutcomes() -> [ChatStore.WriteOutcome] {
        self.outcomes.map { $0 ?? .notMember }
    }

    mutating func readMembership(in sql: any SQLDatabase, again: Bool = false) async throws {
        if again {
            self.members = []
            self.blockedChats = []
            self.keptFrom = [:]
        }
        let chatIDs = Array(Set(self.writes.map(\.chatID))).sorted()
        var people = Set(self.writes.map(\.userID))
        for write in self.writes {
            switch write {
            case .send(let draft): people.formUnion(draft.mentionCandidates)
            case .change(let change): if case .edit(_, let candidates) = change.action { people.formUnion(candidates) }
            }
        }
        let rows = try await sql.raw(
            """
            SELECT m.chat_id, m.user_id, c.blocked, c.kind FROM chat_members m JOIN chats c ON c.id = m.chat_id
            WHERE m.chat_id IN (\(binds: chatIDs)) AND m.user_id IN (\(binds: Array(people)))
            """
        ).all()
        for row in rows {
            let chatID = try row.decode(column: "chat_id", as: String.self)
            self.members.insert(PairKey(chatID: chatID, userID: try row.decode(column: "user_id", as: String.self)))
            if try row.decode(column: "blocked", as: Int.self) != 0 { self.blockedChats.insert(chatID) }
            if try row.decode(column: "kind", as: String.self) == "direct" { self.directChats.insert(chatID) }
        }
        guard !self.blockedChats.isEmpty else { return }
        // Who blocks whom in those chats (rare: one more statement only when a batch has one).
        let writers = Array(Set(self.writes.filter { self.blockedChats.contains($0.chatID) }.map(\.userID)))
        let blocks = try await sql.raw(
            """
            SELECT me.chat_id, me.user_id, other.user_id AS other_id,
                EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = me.user_id AND b.blocked_id = other.user_id) AS blocks_other
            FROM chat_members me JOIN chat_members other ON other.chat_id = me.chat_id AND other.user_id <> me.user_id
            WHERE me.chat_id IN (\(binds: Array(self.blockedChats))) AND me.user_id IN (\(binds: writers))
            """
        ).all()
        for row in blocks where !(try row.decode(column: "blocks_other", as: Bool.self)) {
            let pair = PairKey(chatID: try row.decode(column: "chat_id", as: String.self), userID: try row.decode(column: "user_id", as: String.self))
            self.keptFrom[pair] = try row.decode(column: "other_id", as: String.self)
        }
    }

    /// Whether `write` may go into its chat as far as blocks go: anything outside a blocked chat, a deletion, and the
    /// writes of a blocked person, which the blocker will not see (a send is kept from them, and so is a change: of what
    /// they wrote under the block, or of what the blocker has seen, whose view stays as it was).
    func passesBlocks(_ write: ChatStore.Write) -> Bool {
        guard self.blockedChats.contains(write.chatID), !write.isDeletion else { return true }
        return self.keptFrom[PairKey(chatID: write.chatID, userID: write.userID)] != nil
    }

    mutating func readStoredClientIDs(in sql: any SQLDatabase) async throws {
        var chatIDs = Set<String>()
        var senderIDs = Set<String>()
        var clientIDs = Set<String>()
        for case .send(let draft) in self.writes {
            guard let clientID = draft.clientMessageID else { continue }
            chatIDs.insert(draft.chatID)
            senderIDs.insert(draft.senderID)
            clientIDs.insert(clientID)
        }
        guard !clientIDs.isEmpty else { return }
        // All three columns of the unique index: without sender_id the lookup walks every message of the chats.
        let rows = try await sql.raw(
            """
            SELECT \(MessageRecord.columns) FROM messages m \(MessageRecord.joins)
            WHERE m.chat_id IN (\(binds: Array(chatIDs))) AND m.sender_id IN (\(binds: Array(senderIDs)))
              AND m.client_message_id IN (\(binds: Array(clientIDs)))
            """
        ).all()
        for row in rows {
            let record = try MessageRecord(row: row)
            if let clientID = record.clientMessageID {
                self.storedByClientID[ClientKey(chatID: record.chatID, senderID: record.senderID, clientMessageID: clientID)] = record
            }
        }
    }

    /// Decides what needs no writing (non-members, replays) and counts at most what each chat needs.
    mutating func planSends() {
        var firstInBatch: [ClientKey: Int] = [:]
        for (index, write) in self.writes.enumerated() {
            guard self.members.contains(PairKey(chatID: write.chatID, userID: write.userID)) else {
                self.outcomes[index] = .notMember
                continue
            }
            // Between two people one of whom blocks the other, the blocker can only take back what they wrote.
            guard self.passesBlocks(write) else {
                self.outcomes[index] = .refused(.userUnreachable)
                continue
            }
            if case .send(let draft) = write {
                if let clientID = draft.clientMessageID {
                    let key = ClientKey(chatID: draft.chatID, senderID: draft.senderID, clientMessageID: clientID)
                    if let record = self.storedByClientID[key] {
                        self.outcomes[index] = .duplicate(record)
                        continue
                    }
                    if let first = firstInBatch[key] {
                        self.sameAs[index] = first
                        continue
                    }
                    firstInBatch[key] = index
                }
                self.newPerChat[draft.chatID, default: 0] += 1
            }
            self.versionsPerChat[write.chatID, default: 0] += 1
        }
    }

    /// Reads the messages the changes and replies name, with their reactions, under the chats' locks.
    mutating func readTargets(in sql: any SQLDatabase) async throws {
        var keys = Set<MessageKey>()
        for (index, write) in self.writes.enumerated() where self.outcomes[index] == nil {
            switch write {
            case .send(let draft): if let seq = draft.replyToSeq { keys.insert(MessageKey(chatID: draft.chatID, seq: seq)) }
            case .change(let change): keys.insert(MessageKey(chatID: change.chatID, seq: change.seq))
            }
        }
        guard !keys.isEmpty else { return }
        let values = keys.sorted { ($0.chatID, $0.seq) < ($1.chatID, $1.seq) }.map { SQLQueryString("(\(bind: $0.chatID), \(bind: $0.seq))") }
        let rows = try await sql.raw(
            """
            SELECT \(MessageRecord.columns) FROM (VALUES \(SQLList(values))) AS v
            JOIN messages m ON m.chat_id = v.column1 AND m.seq = v.column2 \(MessageRecord.joins)
            """
        ).all()
        for row in rows {
            let record = try MessageRecord(row: row)
            self.targets[MessageKey(chatID: record.chatID, seq: record.seq)] = record
        }
    }

    /// Carries out every write not decided yet, in order, with seqs and versions from `firsts`.
    mutating func apply(firsts: [String: (seq: Int64, version: Int64)]) {
        for (index, write) in self.writes.enumerated() where self.outcomes[index] == nil {
            if let first = self.sameAs[index] {
                // A replay racing its original within one batch gets the original's answer.
                if case .created(let record) = self.outcomes[first] {
                    self.outcomes[index] = .duplicate(record)
                } else {
                    self.outcomes[index] = self.outcomes[first]
                }
                continue
            }
            // A chat deleted under the batch has no row to move: its writers are no longer members. Membership and
            // blocks are checked again too (read anew under the chats' locks on PostgreSQL).
            guard let first = firsts[write.chatID], self.members.contains(PairKey(chatID: write.chatID, userID: write.userID)) else {
                self.outcomes[index] = .notMember
                continue
            }
            guard self.passesBlocks(write) else {
                self.outcomes[index] = .refused(.userUnreachable)
                continue
            }
            switch write {
            case .send(let draft):
                self.outcomes[index] = self.send(draft, first: first)
            case .change(let change):
                self.outcomes[index] = self.change(change, first: first)
            }
        }
    }

    private mutating func nextVersion(of chatID: String, first: (seq: Int64, version: Int64)) -> Int64 {
        defer { self.usedVersions[chatID, default: 0] += 1 }
        return first.version + self.usedVersions[chatID, default: 0]
    }

    private mutating func send(_ draft: ChatStore.MessageDraft, first: (seq: Int64, version: Int64)) -> ChatStore.WriteOutcome {
        var original: MessageRecord?
        if let seq = draft.replyToSeq {
            original = self.targets[MessageKey(chatID: draft.chatID, seq: seq)]
            guard let original else { return .refused(.messageNotFound) }
            guard original.kind != "deleted" else { return .refused(.messageDeleted) }
        }
        let seq = first.seq + self.usedSeqs[draft.chatID, default: 0]
        self.usedSeqs[draft.chatID, default: 0] += 1
        var record = MessageRecord(
            id: Identifier.make(),
            chatID: draft.chatID,
            seq: seq,
            senderID: draft.senderID,
            kind: draft.file.map { $0.kind == .file ? "file" : "image" } ?? "text",
            text: draft.text,
            fileID: draft.file?.id,
            clientMessageID: draft.clientMessageID,
            createdAt: draft.now,
            file: draft.file,
            replyToSeq: draft.replyToSeq,
            replyTo: original?.preview,
            mentions: self.acceptedMentions(draft.mentionCandidates, in: draft.chatID)
        )
        // What the preview shows someone with a view of their own of the original.
        record.replyHiddenFrom = original?.hiddenFrom
        record.replyKept = original?.kept
        if let blocker = self.keptFrom[PairKey(chatID: draft.chatID, userID: draft.senderID)] {
            record.hiddenFrom = blocker
            record.mentions.removeAll { $0 == blocker }
        }
        record.version = self.nextVersion(of: draft.chatID, first: first)
        // Not a target for later writes of the batch: a client learns a seq from the commit, so a change or reply naming
        // a message of its own batch guessed it, and is answered as if it came first.
        self.created.append(record)
        if let trace = draft.trace { self.traces[record.id] = trace }
        return .created(record)
    }

    private mutating func change(_ change: ChatStore.MessageChange, first: (seq: Int64, version: Int64)) -> ChatStore.WriteOutcome {
        let key = MessageKey(chatID: change.chatID, seq: change.seq)
        guard var record = self.targets[key] else { return .refused(.messageNotFound) }
        var erasedFiles: [String] = []
        var keptChanged = false
        if case .delete = change.action {
            guard record.senderID == change.userID else { return .refused(.notYourMessage) }
            // The timeline's account of a group's changes stays.
            guard record.kind != "system" else { return .refused(.notEditable) }
            guard record.kind != "deleted" else { return .unchanged(record) }
            erasedFiles = [record.fileID, record.file?.thumbnailID].compactMap { $0 }
            record.erase()
        } else {
            let before = record
            if let refusal = self.apply(change, to: &record) { return refusal }
            if let blocker = self.keptFrom[PairKey(chatID: change.chatID, userID: change.userID)], record.hiddenFrom != blocker {
                // A blocked person's change of what the blocker has seen is kept from the blocker: their view stays as
                // it was (and mentions no one new to them).
                if record.kept == nil { record.kept = KeptView(viewer: blocker, of: before) }
                record.mentions.removeAll { $0 == blocker }
            } else if let kept = record.kept {
                // Anyone else's change (or the same person's, once unblocked) reaches the kept view too.
                var view = kept.applied(to: before)
                if self.apply(change, to: &view) == nil {
                    record.kept = KeptView(viewer: kept.viewer, of: view)
                    keptChanged = true
                }
            }
        }
        record.version = self.nextVersion(of: change.chatID, first: first)
        record.changedAt = change.now
        if keptChanged { record.kept?.version = record.version }
        self.targets[key] = record
        if let index = self.changed.firstIndex(where: { $0.0.id == record.id }) {
            self.changed[index] = (record, self.changed[index].erasedFiles.isEmpty ? erasedFiles : self.changed[index].erasedFiles)
        } else {
            self.changed.append((record, erasedFiles))
        }
        return .changed(record, erasedFiles: erasedFiles)
    }

    /// Applies an edit or a reaction to `record`; nil when it did, else the outcome that ends the change (refused, or
    /// changing nothing).
    private func apply(_ change: ChatStore.MessageChange, to record: inout MessageRecord) -> ChatStore.WriteOutcome? {
        switch change.action {
        case .edit(let text, let candidates):
            guard record.senderID == change.userID else { return .refused(.notYourMessage) }
            guard record.kind != "deleted" else { return .refused(.messageDeleted) }
            guard record.kind == "text" else { return .refused(.notEditable) }
            guard record.text != text else { return .unchanged(record) }
            record.text = text
            record.mentions = self.acceptedMentions(candidates, in: change.chatID)
            record.editedAt = change.now
        case .delete:
            preconditionFailure("a deletion is not applied to a view")
        case .react(let emoji, let on):
            guard record.kind != "deleted" else { return .refused(.messageDeleted) }
            let position = record.reactions.firstIndex { $0.emoji == emoji }
            if on {
                if let position, record.reactions[position].userIds.contains(change.userID) { return .unchanged(record) }
                let mine = record.reactions.filter { $0.userIds.contains(change.userID) }.count
                guard mine < ChatStore.maxReactionsPerUser, position != nil || record.reactions.count < ChatStore.maxEmojiPerMessage else {
                    return .refused(.tooManyReactions)
                }
                if let position {
                    record.reactions[position].userIds.append(change.userID)
                } else {
                    record.reactions.append(Reaction(emoji: emoji, userIds: [change.userID]))
                }
            } else {
                guard let position, let mine = record.reactions[position].userIds.firstIndex(of: change.userID) else { return .unchanged(record) }
                record.reactions[position].userIds.remove(at: mine)
                if record.reactions[position].userIds.isEmpty { record.reactions.remove(at: position) }
            }
        }
        return nil
    }

    /// The mentioned ids that are members of the chat, once each, in the text's order.
    private func acceptedMentions(_ candidates: [String], in chatID: String) -> [String] {
        var seen = Set<String>()
        return candidates.filter { self.members.contains(PairKey(chatID: chatID, userID: $0)) && seen.insert($0).inserted }
    }

    /// Hands back the seqs and versions taken for writes that were refused or changed nothing: the chats' rows are still
    /// locked, so the counters step back to the last one used and stay dense.
    func giveBackUnused(firsts: [String: (seq: Int64, version: Int64)], in sql: any SQLDatabase) async throws {
        for chatID in firsts.keys.sorted() {
            let seqs = self.newPerChat[chatID, default: 0] - self.usedSeqs[chatID, default: 0]
            let versions = self.versionsPerChat[chatID, default: 0] - self.usedVersions[chatID, default: 0]
            guard seqs > 0 || versions > 0 else { continue }
            try await sql.raw(
                "UPDATE chats SET last_seq = last_seq - \(bind: seqs), version = version - \(bind: versions) WHERE id = \(bind: chatID)"
            ).run()
        }
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

/// A message by its place in its chat.
private struct MessageKey: Hashable {
    var chatID: String
    var seq: Int64
}
