import Foundation
import Logging
import ParleyCore
import ParleyStore
import ParleyTestSupport
import Testing

@testable import ChatService

@Suite("Delivery in seq order, once, whatever order events arrive in")
struct MessageSequencerTests {
    /// A chat with `count` stored messages, and their records in seq order.
    func chat(with count: Int, in database: Database, now: Int64 = Timestamp.millis()) async throws -> (ChatStore, [MessageRecord]) {
        let store = ChatStore(database: database)
        let users = try await makeUsers(2, in: database)
        let chat = try await store.group(named: "g", creator: users[0], members: users, now: now)
        var records: [MessageRecord] = []
        for index in 0..<count {
            guard
                case .created(let record) = try await store.append(
                    chatID: chat,
                    senderID: users[index % 2],
                    text: "m\(index)",
                    file: nil,
                    clientMessageID: nil,
                    now: now
                )
            else { throw TestSetupError("not created") }
            records.append(record)
        }
        return (store, records)
    }

    @Test("a later seq arriving first brings the earlier ones from the store; the late ones are then dropped", arguments: DatabaseKind.allCases)
    func gapFilledFromTheStore(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let (store, records) = try await self.chat(with: 6, in: database)
            let sequencer = MessageSequencer(store: store, logger: Logger(label: "test"))
            #expect(await sequencer.admit(records[0], isNew: true).map(\.record.seq) == [1])
            #expect(await sequencer.admit(records[3], isNew: true).map(\.record.seq) == [2, 3, 4])
            #expect(await sequencer.admit(records[1], isNew: true).isEmpty)
            #expect(await sequencer.admit(records[2], isNew: true).isEmpty)
            #expect(await sequencer.admit(records[4], isNew: true).map(\.record.seq) == [5])
            #expect(await sequencer.admit(records[4], isNew: true).isEmpty)
            #expect(await sequencer.admit(records[5], isNew: true).map(\.record.seq) == [6])
        }
    }

    @Test("the first message seen of a chat brings the ones sent just before it, not old history", arguments: DatabaseKind.allCases)
    func firstSightBringsOnlyRecentOnes(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let old = Timestamp.millis() - 60_000
            let (store, records) = try await self.chat(with: 3, in: database, now: old)
            let users = Array(Set(records.map(\.senderID)))
            var recent: [MessageRecord] = []
            // A millisecond apart, however slowly this machine stores them: within the in-flight window of each other.
            let now = Timestamp.millis()
            for index in 0..<2 {
                guard
                    case .created(let record) = try await store.append(
                        chatID: records[0].chatID,
                        senderID: users[index % users.count],
                        text: "new\(index)",
                        file: nil,
                        clientMessageID: nil,
                        now: now + Int64(index)
                    )
                else { throw TestSetupError("not created") }
                recent.append(record)
            }
            let sequencer = MessageSequencer(store: store, logger: Logger(label: "test"), startedAt: old - 1)
            // Seq 5 first: seq 4 was sent a moment before it (and may be on its way); 1–3 are a minute old.
            #expect(await sequencer.admit(recent[1], isNew: true).map(\.record.seq) == [4, 5])
            #expect(await sequencer.admit(recent[0], isNew: true).isEmpty)
            // A process that began after seq 4 was sent never brings it live: it is history for the clients.
            let later = MessageSequencer(store: store, logger: Logger(label: "test"), startedAt: recent[1].createdAt + 1)
            #expect(await later.admit(recent[1], isNew: true).map(\.record.seq) == [5])
            #expect(await later.missed(chatID: recent[0].chatID, from: 1, through: 5).isEmpty)
            let fresh = MessageSequencer(store: store, logger: Logger(label: "test"), startedAt: recent[0].createdAt)
            #expect(await fresh.missed(chatID: recent[0].chatID, from: 1, through: 5).map(\.record.seq) == [4, 5])
        }
    }

    @Test("after the bus was away, missed messages come once, from where delivery stopped", arguments: DatabaseKind.allCases)
    func missedMessages(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let (store, records) = try await self.chat(with: 450, in: database)
            let sequencer = MessageSequencer(store: store, logger: Logger(label: "test"))
            let chatID = records[0].chatID
            #expect(await sequencer.admit(records[0], isNew: true).map(\.record.seq) == [1])
            #expect(await sequencer.admit(records[1], isNew: true).map(\.record.seq) == [2])
            // The catch-up names seqs 1...450 (everything since shortly before the loss): only 3...450 are news, in pages.
            let missed = await sequencer.missed(chatID: chatID, from: 1, through: 450)
            #expect(missed.map(\.record.seq) == Array(3...450))
            #expect(await sequencer.missed(chatID: chatID, from: 1, through: 450).isEmpty)
            #expect(await sequencer.admit(records[449], isNew: true).isEmpty)
        }
    }

    @Test("an edit arriving before the messages it follows brings them first, as new, then itself as an update", arguments: DatabaseKind.allCases)
    func changesInVersionOrder(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let (store, records) = try await self.chat(with: 2, in: database)
            let sequencer = MessageSequencer(store: store, logger: Logger(label: "test"), startedAt: records[0].createdAt - 1)
            let change = ChatStore.MessageChange(
                chatID: records[0].chatID,
                seq: 1,
                userID: records[0].senderID,
                action: .edit(text: "m0 edited", mentionCandidates: []),
                // Within the in-flight window of the messages, however slowly this machine ran so far.
                now: records[1].changedAt + 1
            )
            guard case .changed(let edited, _) = try await store.write(.change(change)) else { throw TestSetupError("not changed") }
            #expect(edited.version == 3)
            // The edit first: version 1 is now the edit's (message 1 at version 3), so the fill brings message 2 as new.
            let delivered = await sequencer.admit(edited, isNew: false)
            #expect(delivered.map(\.record.version) == [2, 3])
            #expect(delivered.map(\.isNew) == [true, false])
            #expect(delivered.last?.record.text == "m0 edited")
            // The late originals are duplicates now.
            #expect(await sequencer.admit(records[0], isNew: true).isEmpty)
            #expect(await sequencer.admit(records[1], isNew: true).isEmpty)
        }
    }
}
