import Foundation
import Logging
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import ChatService

/// Records what a writer publishes, in order.
final class PublishedLog: Sendable {
    private let records = Mutex<[MessageRecord]>([])

    func append(_ record: MessageRecord) { self.records.withLock { $0.append(record) } }

    var all: [MessageRecord] { self.records.withLock { $0 } }
}

/// Runs `writers` beside `body`, as the process's service group runs a writer, and stops them after.
func withRunning<T: Sendable>(_ writers: MessageWriter..., body: () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for writer in writers {
            group.addTask { await writer.run() }
        }
        defer { group.cancelAll() }
        return try await body()
    }
}

@Suite("Group commit of concurrent sends on SQLite and PostgreSQL")
struct MessageWriterTests {
    func draft(_ chat: String, _ sender: String, _ text: String, client: String? = nil, file: FileRecord? = nil) -> ChatStore.MessageDraft {
        ChatStore.MessageDraft(chatID: chat, senderID: sender, text: text, file: file, clientMessageID: client, now: Timestamp.millis())
    }

    /// One sender that queues without waiting for acks fills only its share of the queue: the next of its sends waits,
    /// another sender's send is queued at once, and everything is stored once the writer runs.
    @Test("one sender cannot take the whole queue", arguments: DatabaseKind.allCases)
    func oneSenderCannotTakeTheWholeQueue(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.group(named: "g", creator: users[0], members: users, now: 1)
            let writer = MessageWriter(store: store, published: { _ in })
            var pending: [PendingAppend] = []
            for index in 0..<MessageWriter.maxQueuedPerSender {
                pending.append(await writer.submit(self.draft(chat, users[0], "m\(index)")))
            }
            let queued = Atomic<Bool>(false)
            let overflow = Task {
                let pending = await writer.submit(self.draft(chat, users[0], "one too many"))
                queued.store(true, ordering: .relaxed)
                return pending
            }
            let other = await writer.submit(self.draft(chat, users[1], "from someone else"))
            try await Task.sleep(for: .milliseconds(300))
            // The flooding sender's next send still waits for its share (no batch was written yet).
            let overflowQueued = queued.load(ordering: .relaxed)
            #expect(!overflowQueued)
            try await withRunning(writer) {
                let late = await overflow.value
                for item in pending + [other, late] {
                    guard case .created = try await item.outcome() else { throw TestSetupError("not created") }
                }
            }
            let stored = try await store.messages(in: chat, before: nil, after: 0, limit: 1000).records
            #expect(stored.map(\.seq) == Array(1...Int64(MessageWriter.maxQueuedPerSender + 2)))
        }
    }

    @Test("concurrent senders into many chats get dense seqs, chats.last_seq moves, and events come in seq order", arguments: DatabaseKind.allCases)
    func concurrentSendsAreDenseAndOrdered(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(6, in: database)
            var created: [String] = []
            for index in 0..<3 {
                created.append(try await store.group(named: "g\(index)", creator: users[0], members: users, now: 1))
            }
            let chats = created
            let log = PublishedLog()
            let writer = MessageWriter(store: store, published: { if case .created(let record) = $0 { log.append(record) } })
            let outcomes = try await withRunning(writer) {
                try await withThrowingTaskGroup(of: ChatStore.WriteOutcome.self) { group in
                    for index in 0..<600 {
                        group.addTask {
                            try await writer.append(self.draft(chats[index % 3], users[index % 6], "m\(index)", client: "c\(index)"))
                        }
                    }
                    return try await group.reduce(into: [ChatStore.WriteOutcome]()) { $0.append($1) }
                }
            }
            let stored = outcomes.compactMap { outcome -> MessageRecord? in if case .created(let record) = outcome { record } else { nil } }
            #expect(stored.count == 600)
            for chat in chats {
                let seqs = stored.filter { $0.chatID == chat }.map(\.seq).sorted()
                #expect(seqs == Array(1...200))
                let page = try await store.messages(in: chat, before: nil, after: nil, limit: 200)
                #expect(page.records.map(\.seq) == Array(1...200))
                #expect(try await store.chat(chat, visibleTo: users[0])?.lastSeq == 200)
                // Published before each answer, in seq order per chat.
                #expect(log.all.filter { $0.chatID == chat }.map(\.seq) == Array(1...200))
            }
        }
    }

    @Test("messages submitted one after another without waiting get seqs in that order", arguments: DatabaseKind.allCases)
    func submissionsKeepTheirOrder(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            let writer = MessageWriter(store: store, published: { _ in })
            // As a socket's sendMessage events are handled: each queued before the next is read, none awaited.
            var pending: [PendingAppend] = []
            for index in 0..<300 {
                pending.append(await writer.submit(self.draft(chat, users[index % 2], "m\(index)", client: "c\(index)")))
            }
            let seqs = try await withRunning(writer) {
                var seqs: [Int64] = []
                for submitted in pending {
                    guard case .created(let record) = try await submitted.outcome() else { throw TestSetupError("not created") }
                    seqs.append(record.seq)
                }
                return seqs
            }
            #expect(seqs == Array(1...300))
        }
    }

    @Test("racing replays of one clientMessageId store one message and all get it", arguments: DatabaseKind.allCases)
    func racingReplaysStoreOnce(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            let log = PublishedLog()
            let writer = MessageWriter(store: store, published: { if case .created(let record) = $0 { log.append(record) } })
            let outcomes = try await withRunning(writer) {
                try await withThrowingTaskGroup(of: ChatStore.WriteOutcome.self) { group in
                    for index in 0..<50 {
                        group.addTask { try await writer.append(self.draft(chat, users[0], "try \(index)", client: "same")) }
                    }
                    return try await group.reduce(into: [ChatStore.WriteOutcome]()) { $0.append($1) }
                }
            }
            var created: [MessageRecord] = []
            var duplicates: [MessageRecord] = []
            for outcome in outcomes {
                switch outcome {
                case .created(let record): created.append(record)
                case .duplicate(let record): duplicates.append(record)
                default: Issue.record("neither stored nor a duplicate: \(outcome)")
                }
            }
            #expect(created.count == 1)
            #expect(duplicates.count == 49)
            #expect(duplicates.allSatisfy { $0.id == created.first?.id })
            #expect(log.all.count == 1)
            #expect(try await store.messages(in: chat, before: nil, after: nil, limit: 100).records.count == 1)
        }
    }

    @Test("a batch mixing members, non-members, replays and an image answers each draft on its own", arguments: DatabaseKind.allCases)
    func mixedBatch(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(3, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            guard case .created(let earlier) = try await store.append(self.draft(chat, users[0], "earlier", client: "old")) else {
                Issue.record("not created")
                return
            }
            let file = FileRecord(id: Identifier.make(), contentType: "image/png", size: 10, width: 1, height: 1)
            try await FileStore(database: database).insert(file, ownerID: users[1], now: 1)
            let outcomes = try await store.append([
                self.draft(chat, users[0], "one", client: "a"),
                self.draft(chat, users[2], "intruder", client: "b"),
                self.draft(chat, users[0], "replay of old", client: "old"),
                self.draft(chat, users[0], "replay of one", client: "a"),
                self.draft(chat, users[1], "", file: file),
            ])
            guard case .created(let one) = outcomes[0], case .notMember = outcomes[1], case .duplicate(let old) = outcomes[2],
                case .duplicate(let replay) = outcomes[3], case .created(let image) = outcomes[4]
            else {
                Issue.record("unexpected outcomes \(outcomes)")
                return
            }
            #expect(one.seq == 2)
            #expect(old == earlier)
            #expect(replay == one)
            #expect(image.seq == 3 && image.kind == "image" && image.file == file)
            #expect(try await FileStore(database: database).chat(ofFile: file.id) == chat)
            // The senders have read what they sent.
            let pointers = try await store.members(of: [chat])
            #expect(pointers.first { $0.userID == users[0] }?.lastReadSeq == 2)
            #expect(pointers.first { $0.userID == users[1] }?.lastReadSeq == 3)
            #expect(try await store.chat(chat, visibleTo: users[0])?.lastSeq == 3)
        }
    }
}

@Suite("The writer's lifecycle on SQLite and PostgreSQL")
struct MessageWriterLifecycleTests {
    @Test("a graceful shutdown stores every send already queued, then stops the writer", arguments: DatabaseKind.allCases)
    func gracefulShutdownFinishesQueuedSends(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            let writer = MessageWriter(store: store, published: { _ in })
            func draft(_ index: Int) -> ChatStore.MessageDraft {
                ChatStore.MessageDraft(chatID: chat, senderID: users[index % 2], text: "m\(index)", file: nil, clientMessageID: nil, now: 2)
            }
            // Setup: sends queued before the writer runs, more than one batch of them (each sender within its share).
            var pending: [PendingAppend] = []
            for index in 0..<500 {
                pending.append(await writer.submit(draft(index)))
            }
            // Act: shutdown begins as the writer starts.
            await testGracefulShutdown { trigger in
                async let running: Void = writer.run()
                trigger.triggerGracefulShutdown()
                await running
            }
            // Validate: every queued send was stored, in order; a send after the stop is refused, not left waiting.
            var seqs: [Int64] = []
            for submitted in pending {
                guard case .created(let record) = try await submitted.outcome() else { throw TestSetupError("not created") }
                seqs.append(record.seq)
            }
            #expect(seqs == Array(1...500))
            await #expect(throws: WriterStopped.self) { try await writer.submit(draft(500)).outcome() }
            #expect(try await store.chat(chat, visibleTo: users[0])?.lastSeq == 500)
        }
    }
}

@Suite("Group commit across instances on PostgreSQL")
struct MessageWriterInstancesTests {
    @Test("two instances' batches into the same chats never deadlock: chats are locked in one order")
    func noDeadlocksBetweenInstances() async throws {
        try await TestDatabases.with(.postgres) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(4, in: database)
            var chats: [String] = []
            for index in 0..<12 {
                chats.append(try await store.group(named: "g\(index)", creator: users[0], members: users, now: 1))
            }
            let deadlocks = {
                try await database.read { sql in
                    try await sql.raw("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").first()!
                        .decode(column: "deadlocks", as: Int64.self)
                }
            }
            let before = try await deadlocks()
            // Two writers, as two chat instances would have, each filling batches that touch the chats in opposite orders.
            let writers = [MessageWriter(store: store, published: { _ in }), MessageWriter(store: store, published: { _ in })]
            let order = [chats, chats.reversed()]
            try await withRunning(writers[0], writers[1]) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for instance in 0..<2 {
                        for round in 0..<40 {
                            for chat in order[instance] {
                                group.addTask {
                                    let draft = ChatStore.MessageDraft(
                                        chatID: chat,
                                        senderID: users[instance],
                                        text: "r\(round)",
                                        file: nil,
                                        clientMessageID: nil,
                                        now: Timestamp.millis()
                                    )
                                    _ = try await writers[instance].append(draft)
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // pg_stat counters are sent by each backend when its transaction ends: give them a moment.
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await deadlocks() == before)
            for chat in chats {
                #expect(try await store.messages(in: chat, before: nil, after: nil, limit: 100).records.map(\.seq) == Array(1...80))
            }
        }
    }
}

/// Keeps the messages logged through its handlers, with their levels.
final class LoggedLines: Sendable {
    private let lines = Mutex<[(level: Logger.Level, message: String)]>([])

    var all: [(level: Logger.Level, message: String)] { self.lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(lines: self) }
    }

    struct Handler: LogHandler {
        let lines: LoggedLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            self.lines.lines.withLock { $0.append((event.level, event.message.description)) }
        }
    }
}

@Suite("A message writer's batch that does not finish is told")
struct MessageWriterStallTests {
    /// The batch's transaction waits behind another one holding the database (SQLite's one writer; on PostgreSQL, a lock
    /// on `chats`, which taking the batch's seqs updates): once the stall warning's time has passed it is logged, once,
    /// and counted; once the other transaction ends the send is stored and answered, and the end is logged too.
    @Test("a stalled batch is logged once, then its end", arguments: DatabaseKind.allCases)
    func aStalledBatchIsLogged(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.group(named: "g", creator: users[0], members: users, now: 1)
            let lines = LoggedLines()
            let writer = MessageWriter(store: store, stallWarning: .milliseconds(200), logger: lines.logger, published: { _ in })
            let (release, releaser) = AsyncStream<Void>.makeStream()
            let (held, holder) = AsyncStream<Void>.makeStream()
            let holding = Task {
                try await database.transaction { sql in
                    if kind == .postgres { try await sql.raw("LOCK TABLE chats IN EXCLUSIVE MODE").run() }
                    holder.yield()
                    for await _ in release {}
                }
            }
            for await _ in held { break }
            try await withRunning(writer) {
                let pending = await writer.submit(
                    ChatStore.MessageDraft(chatID: chat, senderID: users[0], text: "held", file: nil, clientMessageID: nil, now: 1)
                )
                try await Task.sleep(for: .milliseconds(900))
                let warnings = lines.all.filter { $0.level == .warning }.map(\.message)
                #expect(warnings == ["the message writer's batch has not finished: every send waits behind it"])
                releaser.finish()
                try await holding.value
                guard case .created(let record) = try await pending.outcome() else { throw TestSetupError("not created") }
                #expect(record.seq == 1)
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(lines.all.map(\.message).contains("the message writer's stalled batch finished"))
            #expect(lines.all.filter { $0.level == .warning }.count == 1)
        }
    }

    /// Batches take milliseconds; on this suite's loaded machine, SQLite's commits were seen to take over 200 ms each, so
    /// the warning's time here is its default's order.
    @Test("a batch that finishes in time is not logged")
    func aQuickBatchIsNotLogged() async throws {
        try await TestDatabases.with(.sqlite) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.group(named: "g", creator: users[0], members: users, now: 1)
            let lines = LoggedLines()
            let writer = MessageWriter(store: store, stallWarning: .seconds(5), logger: lines.logger, published: { _ in })
            try await withRunning(writer) {
                for index in 0..<20 {
                    let pending = await writer.submit(
                        ChatStore.MessageDraft(chatID: chat, senderID: users[0], text: "m\(index)", file: nil, clientMessageID: nil, now: 1)
                    )
                    _ = try await pending.outcome()
                }
                // Past a look of the watch (every 1.25 s here).
                try await Task.sleep(for: .milliseconds(1500))
            }
            #expect(lines.all.isEmpty)
        }
    }
}
