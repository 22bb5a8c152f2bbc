import Foundation
import Logging
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import ServiceLifecycle
import Testing

@testable import ChatService

/// Collects what a bus subscription delivers, for waiting on it.
actor Received {
    private(set) var events: [ChatEvent] = []

    func append(_ event: ChatEvent) { self.events.append(event) }

    /// Waits until `predicate` holds for the events so far (at most `seconds`), and returns them.
    func wait(seconds: Double = 10, until predicate: @Sendable ([ChatEvent]) -> Bool) async throws -> [ChatEvent] {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while !predicate(self.events) {
            guard ContinuousClock.now < deadline else { throw TestSetupError("timed out; received \(self.events.count) events") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return self.events
    }
}

extension ChatEvent {
    var messageSeq: Int64? {
        if case .newMessage(let record) = self { return record.seq }
        return nil
    }
}

/// Runs two buses on one database, as two chat instances would, with a subscriber on each.
func withTwoBuses(
    _ database: Database,
    _ body: (PostgresEventBus, Received, PostgresEventBus, Received) async throws -> Void
) async throws {
    let logger = Logger(label: "test.bus")
    let first = PostgresEventBus(database: database, instanceID: "chat1-\(Identifier.make().suffix(6))", logger: logger)
    let second = PostgresEventBus(database: database, instanceID: "chat2-\(Identifier.make().suffix(6))", logger: logger)
    let (firstReceived, secondReceived) = (Received(), Received())
    try await withThrowingTaskGroup(of: Void.self) { group in
        for (bus, received) in [(first, firstReceived), (second, secondReceived)] {
            let events = bus.subscribe()
            group.addTask { try await bus.run() }
            group.addTask { for await event in events { await received.append(event) } }
        }
        // Both listening before anything is published.
        while !(first.isListening && second.isListening) { try await Task.sleep(for: .milliseconds(20)) }
        try await body(first, firstReceived, second, secondReceived)
        group.cancelAll()
    }
}

@Suite("Event bus over PostgreSQL LISTEN/NOTIFY")
struct EventBusTests {
    func record(chat: String, seq: Int64, sender: String, text: String = "hello") -> MessageRecord {
        MessageRecord(
            id: Identifier.make(),
            chatID: chat,
            seq: seq,
            senderID: sender,
            kind: "text",
            text: text,
            fileID: nil,
            clientMessageID: nil,
            createdAt: Timestamp.millis(),
            file: nil
        )
    }

    @Test("events published on one instance reach the other once, in publish order, and are not echoed back")
    func crossInstanceDelivery() async throws {
        try await TestDatabases.with(.postgres) { database in
            let users = try await makeUsers(2, in: database)
            let chat = try await ChatStore(database: database).group(named: "g", creator: users[0], members: users, now: 1)
            try await withTwoBuses(database) { first, firstReceived, _, secondReceived in
                for seq in 1...300 {
                    first.publish(.newMessage(self.record(chat: chat, seq: Int64(seq), sender: users[0])))
                }
                first.publish(.typing(chatID: chat, userID: users[0], isTyping: true))
                let events = try await secondReceived.wait { $0.count >= 301 }
                #expect(events.compactMap(\.messageSeq) == Array(1...300))
                // Facts only: the receiving instance's fan-out finds the members (ChatFanoutTests).
                #expect(events.last == .typing(chatID: chat, userID: users[0], isTyping: true))
                try await Task.sleep(for: .milliseconds(300))
                #expect(await firstReceived.events.count == 301)
                #expect(await secondReceived.events.count == 301)
            }
        }
    }

    @Test("an event too large for one notification travels through the store")
    func largeEvent() async throws {
        try await TestDatabases.with(.postgres) { database in
            let users = try await makeUsers(2, in: database)
            let chat = try await ChatStore(database: database).group(named: "g", creator: users[0], members: users, now: 1)
            let text = String(repeating: "語", count: 4000)
            try await withTwoBuses(database) { first, _, _, secondReceived in
                first.publish(.newMessage(self.record(chat: chat, seq: 1, sender: users[0], text: text)))
                first.publish(.newMessage(self.record(chat: chat, seq: 2, sender: users[0])))
                let events = try await secondReceived.wait { $0.count >= 2 }
                guard case .newMessage(let record) = events.first else {
                    Issue.record("no message")
                    return
                }
                #expect(record.text == text)
                #expect(events.compactMap(\.messageSeq) == [1, 2])
            }
            let stored = try await database.read { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM bus_payloads").first()!.decode(column: "n", as: Int.self)
            }
            #expect(stored == 1)
        }
    }

    @Test("catching up after the listener was away announces every chat with messages since then")
    func catchUp() async throws {
        try await TestDatabases.with(.postgres) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(3, in: database)
            let old = try await store.group(named: "old", creator: users[0], members: users, now: 1)
            // A change is dated by its `now`: the old chat's a minute before the catch-up's bound, the busy one's after it.
            let since = Timestamp.millis()
            _ = try await store.append(chatID: old, senderID: users[0], text: "before", file: nil, clientMessageID: nil, now: since - 60_000)
            let busy = try await store.group(named: "busy", creator: users[0], members: users, now: 2)
            for index in 0..<3 {
                _ = try await store.append(chatID: busy, senderID: users[index], text: "m\(index)", file: nil, clientMessageID: nil, now: since + 1)
            }
            let bus = PostgresEventBus(database: database, instanceID: "chat9", logger: Logger(label: "test.bus"))
            let events = bus.subscribe()
            try await bus.catchUp(since: since)
            var iterator = events.makeAsyncIterator()
            #expect(await iterator.next() == .messagesMissed(chatID: busy, firstVersion: 1, lastVersion: 3))
        }
    }

    @Test("a batch of events is packed into notifications under the size limit, in order")
    func packing() throws {
        let bus = NotificationPacker(origin: "chat1")
        let small = (0..<100).map { Data(#"{"kind":"typing","chatID":"\#($0)"}"#.utf8) }
        let huge = Data(#"{"kind":"message","text":""#.utf8) + Data(repeating: UInt8(ascii: "a"), count: 9000) + Data(#""}"#.utf8)
        let payloads = bus.payloads(of: small + [huge] + small, sentAt: 1_700_000_000_000)
        var order: [String] = []
        for payload in payloads {
            switch payload {
            case .inline(let text):
                #expect(text.utf8.count <= PostgresEventBus.payloadLimit)
                let notification = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
                #expect(notification["origin"] as? String == "chat1")
                #expect(notification["sent"] as? Int == 1_700_000_000_000)
                order += (notification["events"] as! [[String: Any]]).map { ($0["chatID"] as? String) ?? "huge" }
            case .stored(let text):
                #expect(text.utf8.count > PostgresEventBus.payloadLimit)
                order.append("stored")
            }
        }
        let numbers: [String] = (0..<100).map { String($0) }
        let expected: [String] = numbers + ["stored"] + numbers
        #expect(order == expected)
    }
}

@Suite("Chat events on the wire")
struct ChatEventWireTests {
    let record = MessageRecord(
        id: "0190f1e2-aaaa-7bbb-8ccc-000000000001",
        chatID: "0190f1e2-aaaa-7bbb-8ccc-000000000002",
        seq: 42,
        senderID: "0190f1e2-aaaa-7bbb-8ccc-000000000003",
        kind: "image",
        text: "hi",
        fileID: "f1",
        clientMessageID: "k1",
        createdAt: 1_700_000_000_000,
        file: FileRecord(id: "f1", contentType: "image/png", size: 10, width: 2, height: 3)
    )
    let systemRecord = MessageRecord(
        id: "0190f1e2-aaaa-7bbb-8ccc-000000000004",
        chatID: "0190f1e2-aaaa-7bbb-8ccc-000000000002",
        seq: 43,
        senderID: "0190f1e2-aaaa-7bbb-8ccc-000000000003",
        kind: "system",
        text: nil,
        fileID: nil,
        clientMessageID: nil,
        createdAt: 1_700_000_000_001,
        file: nil,
        system: SystemEvent(action: "added", actorId: "0190f1e2-aaaa-7bbb-8ccc-000000000003", userIds: ["u9"])
    )

    @Test("every event that travels comes back equal from its encoding")
    func roundTrip() throws {
        let summary = ChatSummary(
            id: "c1",
            kind: "group",
            name: "g",
            avatarUrl: nil,
            members: [ChatMember(id: "a", name: "A", role: "owner")],
            lastMessage: nil,
            unreadCount: 0,
            readState: [ReadState(userId: "a", lastReadSeq: 1)],
            updatedAt: Timestamp.iso8601(millis: 1),
            version: 0,
            mentionCount: 0
        )
        let events: [ChatEvent] = [
            .newMessage(self.record), .messagesSeen(chatID: "c1", userID: "u1", seq: 9), .typing(chatID: "c1", userID: "u1", isTyping: false),
            .chatUpdated(summary), .presence(userID: "u1", online: true), .chatRemoved(chatID: "c1", userIDs: ["u2", "u3"]),
            .chatBlocked(chatID: "c1", blocked: true),
            .readPointers(chatID: "c1", pointers: [ReadPointer(userID: "u1", seq: 3), ReadPointer(userID: "u2", seq: 4)], senders: ["u3"]),
            .newMessage(self.systemRecord),
        ]
        for event in events {
            #expect(event.travels)
            #expect(try PostgresEventBus.decoder.decode(ChatEvent.self, from: PostgresEventBus.encoder.encode(event)) == event)
        }
        #expect(!ChatEvent.messagesMissed(chatID: "c1", firstVersion: 1, lastVersion: 2).travels)
    }

    @Test("facts only, in short keys: a presence's known contacts stay in their process")
    func compact() throws {
        let presence = try PostgresEventBus.encoder.encode(ChatEvent.presence(userID: "u1", online: false, contacts: ["u2", "u3"]))
        #expect(try PostgresEventBus.decoder.decode(ChatEvent.self, from: presence) == .presence(userID: "u1", online: false))
        #expect(!String(decoding: presence, as: UTF8.self).contains("u2"))
        let seen = try PostgresEventBus.encoder.encode(ChatEvent.messagesSeen(chatID: "c1", userID: "u1", seq: 9))
        #expect(seen.count <= 40)
        let message = try PostgresEventBus.encoder.encode(ChatEvent.newMessage(self.record))
        let recordAlone = try PostgresEventBus.encoder.encode(self.record)
        #expect(message.count <= recordAlone.count + 12)
    }

    @Test("a malformed event is refused, not half read")
    func malformed() {
        for text in [#"{}"#, #"{"m":{}}"#, #"{"s":{"c":"c1","u":"u1"}}"#, #"{"m":{"r":{}},"s":{"c":"c1","u":"u1","q":1}}"#, #"{"z":{}}"#] {
            #expect(throws: (any Error).self) { try PostgresEventBus.decoder.decode(ChatEvent.self, from: Data(text.utf8)) }
        }
    }
}

@Suite("Event bus safety net")
struct EventBusReconcileTests {
    @Test("a message whose notification was never sent (its instance died after the commit) is announced within seconds")
    func unannouncedMessageIsFound() async throws {
        try await TestDatabases.with(.postgres) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.group(named: "g", creator: users[0], members: users, now: 1)
            try await withTwoBuses(database) { _, _, _, secondReceived in
                // Stored, never published: as if the sending instance was killed between its commit and its NOTIFY.
                _ = try await store.append(chatID: chat, senderID: users[0], text: "orphan", file: nil, clientMessageID: nil, now: Timestamp.millis())
                let events = try await secondReceived.wait(seconds: 12) { events in
                    events.contains { $0 == .messagesMissed(chatID: chat, firstVersion: 1, lastVersion: 1) }
                }
                #expect(!events.isEmpty)
            }
        }
    }
}
