import Foundation
import Logging
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SocketIOProtocol
import SocketIOServer
import Synchronization
import Testing

@testable import ChatService

/// Records what the fan-out queues for whom, as the wire text of each event.
final class RecordedEmits: EventRecipients {
    private let emits = Mutex<[(text: String, users: [String], skipping: Set<String>)]>([])

    func emit(_ event: EncodedEvent, toUsers users: [String]) {
        self.emits.withLock { $0.append((event.text, users, [])) }
    }

    func emit(_ event: EncodedEvent, toUser user: String, skipping: Set<String>) {
        self.emits.withLock { $0.append((event.text, [user], skipping)) }
    }

    var all: [(text: String, users: [String])] { self.emits.withLock { $0.map { ($0.text, $0.users) } } }

    /// The sockets each emit skipped, in order.
    var skipped: [Set<String>] { self.emits.withLock { $0.map(\.skipping) } }

    /// The seqs of the `newMessage` events, in the order they were queued.
    var messageSeqs: [Int64] {
        self.all.compactMap { emit -> Int64? in
            guard emit.text.hasPrefix(#"42["newMessage","#), let range = emit.text.range(of: #""seq":"#) else { return nil }
            return Int64(emit.text[range.upperBound...].prefix { $0.isNumber })
        }
    }
}

/// The realtime parts over a chat service on `database`, with a recording bus: wired by ``ChatRealtime`` itself, as the
/// application wires them, with the fan-out recording what it queues instead of writing to sockets.
struct RealtimeParts {
    let service: ChatService
    let bus: RecordingBus
    let realtime: ChatRealtime
    let emits = RecordedEmits()

    var fanout: ChatFanout { self.realtime.fanout }
    var router: ClientEventRouter { self.realtime.router }
    var reads: ReadOnDelivery { self.realtime.reads }

    init(database: Database) async throws {
        let signer = try await FileURLSigner.load(database: database, baseURL: "")
        let bus = RecordingBus()
        let blobs = try DiskBlobStore(
            directory: FileManager.default.temporaryDirectory.appendingPathComponent("parley-blobs-\(Identifier.make())").path
        )
        let service = ChatService(
            database: database,
            directory: EveryoneDirectory(),
            blobs: blobs,
            signer: signer,
            bus: bus,
            maxUploadBytes: 1024
        )
        self.service = service
        self.bus = bus
        // These tests drive events of admitted sockets; token renewal is tested through the application (ParleyAppTests).
        self.realtime = ChatRealtime(service: service, verifier: NoTokens(), logger: Logger(label: "test.realtime"))
        self.realtime.fanout.attach(to: self.emits)
    }

    /// Appends `count` messages from `sender` to `chat`, stored only (not published).
    func append(_ count: Int, to chat: String, from sender: String) async throws -> [MessageRecord] {
        var records: [MessageRecord] = []
        // Sent together, as far as the sequencer's in-flight window can tell, however slowly this machine stores them.
        let now = Timestamp.millis()
        for index in 0..<count {
            guard
                case .created(let record) = try await self.service.store.append(
                    chatID: chat,
                    senderID: sender,
                    text: "m\(index)",
                    file: nil,
                    clientMessageID: nil,
                    now: now
                )
            else { throw TestSetupError("not created") }
            records.append(record)
        }
        return records
    }
}

/// The one argument of an event packet `42["name",argument]`, decoded.
func argument<T: Decodable>(of packet: String, named name: String, as type: T.Type) throws -> T {
    let prefix = #"42[""# + name + #"","#
    guard packet.hasPrefix(prefix), packet.hasSuffix("]") else { throw TestSetupError("not a \(name) event: \(packet)") }
    return try JSONDecoder().decode(T.self, from: Data(packet.dropFirst(prefix.count).dropLast().utf8))
}

@Suite("Fan-out from the bus through the sequencer to sockets")
struct ChatFanoutTests {
    @Test("messages reach every member once and in seq order, whatever order the bus brings them in", arguments: DatabaseKind.allCases)
    func throughTheSequencer(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(3, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: users, now: 1)
            let records = try await parts.append(4, to: chat, from: users[0])
            // Seq 2 first (seq 1 was sent a moment before: it comes first), then duplicates, then a gap.
            await parts.fanout.deliver(.newMessage(records[1]))
            await parts.fanout.deliver(.newMessage(records[0]))
            await parts.fanout.deliver(.newMessage(records[1]))
            await parts.fanout.deliver(.newMessage(records[3]))
            await parts.fanout.deliver(.newMessage(records[2]))
            #expect(parts.emits.messageSeqs == [1, 2, 3, 4])
            // Members found in the store once, for every event of the chat: not on the event.
            #expect(parts.emits.all.allSatisfy { Set($0.users) == Set(users) })
            let first = try #require(parts.emits.all.first)
            #expect(try argument(of: first.text, named: "newMessage", as: Message.self) == records[0].message(signer: parts.service.signer))
        }
    }

    @Test("a fill after the bus was away delivers only what was not delivered", arguments: DatabaseKind.allCases)
    func fill(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: users, now: 1)
            let records = try await parts.append(3, to: chat, from: users[1])
            await parts.fanout.deliver(.newMessage(records[0]))
            await parts.fanout.deliver(.messagesMissed(chatID: chat, firstVersion: 1, lastVersion: 3))
            await parts.fanout.deliver(.messagesMissed(chatID: chat, firstVersion: 1, lastVersion: 3))
            #expect(parts.emits.messageSeqs == [1, 2, 3])
        }
    }

    @Test(
        "a removal found by a fill before its chatUpdated arrives reaches no one removed, nor does anything after it",
        arguments: DatabaseKind.allCases
    )
    func removalFoundByAFill(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(3, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: users, now: 1)
            let first = try await parts.append(1, to: chat, from: users[0])
            await parts.fanout.deliver(.newMessage(first[0]))
            // Another instance removes users[1] and sends on: this process's cache still holds all three, and the
            // reconciler finds the removal and the next message in the database before the bus brings `chatUpdated`.
            let removal = try await parts.service.store.changeGroup(chat, by: users[0], now: Timestamp.millis()) {
                try GroupRules.remove(users[1], from: $0, by: users[0])
            }
            let after = try await parts.append(1, to: chat, from: users[0])
            await parts.fanout.deliver(.messagesMissed(chatID: chat, firstVersion: first[0].version + 1, lastVersion: after[0].version))
            #expect(parts.emits.messageSeqs == [1, removal[0].seq, after[0].seq])
            let emits = parts.emits.all
            #expect(Set(emits[0].users) == Set(users))
            #expect(Set(emits[1].users) == [users[0], users[2]], "the removal")
            #expect(Set(emits[2].users) == [users[0], users[2]], "the message after it")
        }
    }

    @Test("a reconnect storm of a 300-member group is one presence packet for all, not one per pair; a single change keeps the contract's event")
    func presenceStormIsCoalesced() async throws {
        try await TestDatabases.with(.sqlite) { database in
            let parts = try await RealtimeParts(database: database)
            let users = (0..<300).map { "u\($0)" }
            for user in users { await parts.fanout.deliver(.presence(userID: user, online: true, contacts: users.filter { $0 != user })) }
            // Nothing goes out before the window ends.
            #expect(parts.emits.all.isEmpty)
            let packets = parts.fanout.presenceBatch.flush()
            // Without the batch: 300 × 299 = 89,700 packets.
            #expect(packets.count == 1)
            let (event, recipients) = try #require(packets.first)
            #expect(Set(recipients) == Set(users))
            let payload = try argument(of: event.text, named: "presence", as: [String: [String]].self)
            #expect(Set(payload["online"] ?? []) == Set(users) && payload["offline"] == [])

            // One user leaves: the contract's userOffline to the others, nothing to the one who left.
            await parts.fanout.deliver(.presence(userID: "u7", online: false, contacts: ["u1", "u2"]))
            let single = parts.fanout.presenceBatch.flush()
            #expect(single.count == 1)
            #expect(single.first?.0.text == #"42["userOffline",{"userId":"u7"}]"#)
            #expect(Set(single.first?.1 ?? []) == ["u1", "u2"])

            // Came and went in one window: the last change counts; a few changes are the contract's events, one each.
            await parts.fanout.deliver(.presence(userID: "u8", online: true, contacts: ["u1"]))
            await parts.fanout.deliver(.presence(userID: "u9", online: true, contacts: ["u1"]))
            await parts.fanout.deliver(.presence(userID: "u8", online: false, contacts: ["u1"]))
            let few = parts.fanout.presenceBatch.flush().filter { $0.1 == ["u1"] }.map(\.0.text).sorted()
            #expect(few == [#"42["userOffline",{"userId":"u8"}]"#, #"42["userOnline",{"userId":"u9"}]"#])

            // One person's changes addressed to different recipients: each hears the last change addressed to them.
            await parts.fanout.deliver(.presence(userID: "x", online: true, contacts: ["a", "b"]))
            await parts.fanout.deliver(.presence(userID: "x", online: false, contacts: ["b"]))
            let split = parts.fanout.presenceBatch.flush().filter { $0.1 != ["x"] }.map { "\($0.0.text) → \($0.1)" }
            #expect(split.sorted() == [#"42["userOffline",{"userId":"x"}] → ["b"]"#, #"42["userOnline",{"userId":"x"}] → ["a"]"#])

            // Beyond the threshold, one list, each user's last change.
            let many = (0...PresenceBatch.listThreshold).map { "m\($0)" }
            for user in many { await parts.fanout.deliver(.presence(userID: user, online: true, contacts: ["w"])) }
            await parts.fanout.deliver(.presence(userID: "m0", online: false, contacts: ["w"]))
            let listed = parts.fanout.presenceBatch.flush().filter { $0.1 == ["w"] }
            #expect(listed.count == 1)
            let list = try argument(of: try #require(listed.first).0.text, named: "presence", as: [String: [String]].self)
            #expect(list["online"] == Array(many.dropFirst()) && list["offline"] == ["m0"])

            // Two contacts who come online in one window, one of them the recipient: the other is the only news.
            await parts.fanout.deliver(.presence(userID: "a", online: true, contacts: ["b"]))
            await parts.fanout.deliver(.presence(userID: "b", online: true, contacts: ["a"]))
            let pair = parts.fanout.presenceBatch.flush().map { "\($0.0.text) → \($0.1)" }.sorted()
            #expect(pair == [#"42["userOnline",{"userId":"a"}] → ["b"]"#, #"42["userOnline",{"userId":"b"}] → ["a"]"#])
            #expect(parts.fanout.presenceBatch.flush().isEmpty, "the window is emptied")
        }
    }

    @Test("typing goes to the other members, read state and new chats to all, with payloads as the contract says")
    func otherEvents() async throws {
        try await TestDatabases.with(.sqlite) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(3, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: users, now: 1)
            await parts.fanout.deliver(.typing(chatID: chat, userID: users[1], isTyping: true))
            await parts.fanout.deliver(.typing(chatID: chat, userID: users[1], isTyping: false))
            await parts.fanout.deliver(.messagesSeen(chatID: chat, userID: users[2], seq: 3))
            let emits = parts.emits.all
            let typing = #"{"chatId":"\#(chat)","userId":"\#(users[1])"}"#
            #expect(emits[0].text == #"42["userTyping",\#(typing)]"# && Set(emits[0].users) == [users[0], users[2]])
            #expect(emits[1].text == #"42["userStoppedTyping",\#(typing)]"# && Set(emits[1].users) == [users[0], users[2]])
            #expect(
                emits[2].text == #"42["messagesSeen",{"chatId":"\#(chat)","userId":"\#(users[2])","seq":3}]"# && Set(emits[2].users) == Set(users)
            )
        }
    }

    @Test("a chat announced by another instance teaches the membership cache its members")
    func chatUpdatedRemembersMembers() async throws {
        try await TestDatabases.with(.sqlite) { database in
            let parts = try await RealtimeParts(database: database)
            let summary = ChatSummary(
                id: Identifier.make(),
                kind: "direct",
                name: nil,
                avatarUrl: nil,
                members: [ChatMember(id: "a", name: "A", role: "member"), ChatMember(id: "b", name: "B", role: "member")],
                lastMessage: nil,
                unreadCount: 0,
                readState: [],
                updatedAt: Timestamp.iso8601(millis: 1),
                version: 0,
                mentionCount: 0
            )
            await parts.fanout.deliver(.chatUpdated(summary))
            #expect(try await parts.service.membership.members(of: summary.id) == ["a", "b"])
            let emitted = try #require(parts.emits.all.first)
            #expect(try argument(of: emitted.text, named: "chatUpdated", as: ChatSummary.self) == summary)
            #expect(Set(emitted.users) == ["a", "b"])
        }
    }
}

@Suite("Read state written once per delivery by the server, for chats open on a socket")
struct ReadOnDeliveryTests {
    @Test("a burst into an open chat moves each viewer's pointer once, never the sender's, and tells the chat", arguments: DatabaseKind.allCases)
    func burstIsCoalesced(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(3, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: users, now: 1)
            for (user, socket) in [(users[0], "s0"), (users[1], "s1"), (users[1], "s1b")] {
                try await parts.router.handle(.openChat(chatID: chat, open: true), from: .init(userID: user, socketID: socket), ack: nil)
            }
            let records = try await parts.append(3, to: chat, from: users[0])
            for record in records { await parts.fanout.deliver(.newMessage(record)) }
            let running = Task { await parts.reads.run() }
            try await parts.bus.wait { !$0.isEmpty }
            running.cancel()
            await running.value
            #expect(parts.bus.events == [.readPointers(chatID: chat, pointers: [ReadPointer(userID: users[1], seq: 3)], senders: [users[0]])])
            let members = try await parts.service.store.members(of: [chat])
            // The sender's pointer moved when sending, not on delivery.
            #expect(Dictionary(uniqueKeysWithValues: members.map { ($0.userID, $0.lastReadSeq) }) == [users[0]: 3, users[1]: 3, users[2]: 0])
        }
    }

    @Test(
        "a busy group's viewers cost one write and one event per interval, not one per viewer: 200 viewers, 5 messages",
        arguments: DatabaseKind.allCases
    )
    func manyViewersOneWrite(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(201, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: users, now: 1)
            let viewers = Array(users[1...])
            for (index, viewer) in viewers.enumerated() {
                try await parts.router.handle(.openChat(chatID: chat, open: true), from: .init(userID: viewer, socketID: "s\(index)"), ack: nil)
            }
            for record in try await parts.append(5, to: chat, from: users[0]) { await parts.fanout.deliver(.newMessage(record)) }
            let running = Task { await parts.reads.run() }
            try await parts.bus.wait { !$0.isEmpty }
            // Another interval: nothing more is written or told.
            try await Task.sleep(for: parts.reads.interval * 2)
            running.cancel()
            await running.value
            let expected = viewers.sorted().map { ReadPointer(userID: $0, seq: 5) }
            #expect(parts.bus.events == [.readPointers(chatID: chat, pointers: expected, senders: [users[0]])])
            let pointers = try await parts.service.store.members(of: [chat]).filter { $0.lastReadSeq == 5 }
            #expect(pointers.count == 201)
        }
    }

    @Test("many pointers move in one statement: forward only, never past the last message, never for non-members", arguments: DatabaseKind.allCases)
    func markReadMany(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(4, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: Array(users[0...2]), now: 1)
            let other = try await parts.service.store.group(named: "h", creator: users[0], members: Array(users[0...1]), now: 1)
            _ = try await parts.append(3, to: chat, from: users[0])
            _ = try await parts.append(2, to: other, from: users[0])
            _ = try await parts.service.store.markRead(chatID: chat, userID: users[2], seq: 3)
            // 600 pointers: more than one statement's 500.
            var pointers = [(chatID: String, pointer: ReadPointer)](repeating: (other, ReadPointer(userID: users[1], seq: 1)), count: 597)
            pointers += [
                (chat, ReadPointer(userID: users[1], seq: 9)),  // past the last message: to 3
                (chat, ReadPointer(userID: users[2], seq: 2)),  // back: nothing
                (chat, ReadPointer(userID: users[3], seq: 2)),  // not a member: nothing
            ]
            let moved = try await parts.service.store.markRead(pointers)
            #expect(
                moved.map { "\($0.chatID == chat ? "chat" : "other") \($0.pointer.userID == users[1]) \($0.pointer.seq)" }.sorted() == [
                    "chat true 3", "other true 1",
                ]
            )
            let seqs = try await parts.service.store.members(of: [chat, other]).map { "\($0.userID == users[1]) \($0.lastReadSeq)" }
            #expect(seqs.sorted() == ["false 2", "false 3", "false 3", "true 1", "true 3"])
        }
    }

    @Test("moved pointers go to each viewer and, all at once, to the senders of what was read; one pointer in the contract's shape")
    func readPointersFanOut() async throws {
        try await TestDatabases.with(.sqlite) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(5, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: Array(users[0...3]), now: 1)
            // users[4] is not a member: a sender no longer in the chat hears nothing. users[1] has the chat open on s1.
            parts.reads.open(chat, socketID: "s1", userID: users[1])
            await parts.fanout.deliver(
                .readPointers(
                    chatID: chat,
                    pointers: [ReadPointer(userID: users[1], seq: 4), ReadPointer(userID: users[2], seq: 3)],
                    senders: [users[0], users[4]]
                )
            )
            await parts.fanout.deliver(.readPointers(chatID: chat, pointers: [ReadPointer(userID: users[3], seq: 4)], senders: [users[0]]))
            let emits = parts.emits.all
            #expect(emits.count == 5)
            #expect(emits[0].text == #"42["messagesSeen",{"chatId":"\#(chat)","userId":"\#(users[1])","seq":4}]"# && emits[0].users == [users[1]])
            #expect(parts.emits.skipped[0] == ["s1"], "the socket that read it is not told")
            #expect(parts.emits.skipped[1].isEmpty)
            #expect(emits[1].text == #"42["messagesSeen",{"chatId":"\#(chat)","userId":"\#(users[2])","seq":3}]"# && emits[1].users == [users[2]])
            let readState = #"[{"userId":"\#(users[1])","lastReadSeq":4},{"userId":"\#(users[2])","lastReadSeq":3}]"#
            #expect(emits[2].text == #"42["readState",{"chatId":"\#(chat)","readState":\#(readState)}]"# && emits[2].users == [users[0]])
            #expect(emits[3].text == #"42["messagesSeen",{"chatId":"\#(chat)","userId":"\#(users[3])","seq":4}]"# && emits[3].users == [users[3]])
            #expect(emits[4].text == emits[3].text && emits[4].users == [users[0]])
        }
    }

    @Test("a chat closed on a socket, or a socket gone, is no longer read on delivery")
    func closedChatsAreNotRead() async throws {
        try await TestDatabases.with(.sqlite) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(4, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: users, now: 1)
            for index in 1...3 {
                let caller = ClientEventRouter.Caller(userID: users[index], socketID: "s\(index)")
                try await parts.router.handle(.openChat(chatID: chat, open: true), from: caller, ack: nil)
            }
            try await parts.router.handle(.openChat(chatID: chat, open: false), from: .init(userID: users[1], socketID: "s1"), ack: nil)
            parts.reads.socketGone("s2")
            for record in try await parts.append(2, to: chat, from: users[0]) { await parts.fanout.deliver(.newMessage(record)) }
            let running = Task { await parts.reads.run() }
            try await parts.bus.wait { !$0.isEmpty }
            running.cancel()
            await running.value
            // Only the viewer who kept the chat open.
            #expect(parts.bus.events == [.readPointers(chatID: chat, pointers: [ReadPointer(userID: users[3], seq: 2)], senders: [users[0]])])
        }
    }
}

@Suite("Client events routed with their acks")
struct ClientEventRouterTests {
    /// Collects ack answers.
    final class Answers: Sendable {
        private let answers = Mutex<[String]>([])
        var all: [String] { self.answers.withLock { $0 } }
        var ack: ClientEventRouter.Ack { { arguments in self.answers.withLock { $0 += arguments } } }
    }

    @Test("an unknown event, a bad payload and a chat one is not in are answered with the contract's error body")
    func refusals() async throws {
        try await TestDatabases.with(.sqlite) { database in
            let parts = try await RealtimeParts(database: database)
            let users = try await makeUsers(3, in: database)
            let chat = try await parts.service.store.group(named: "g", creator: users[0], members: Array(users[0...1]), now: 1)
            let answers = Answers()
            let stranger = ClientEventRouter.Caller(userID: users[2], socketID: "s2")
            await parts.router.receive(name: "dance", payload: nil, from: stranger, ack: answers.ack)
            await parts.router.receive(name: "markRead", payload: ["chatId": .string(chat)], from: stranger, ack: answers.ack)
            await parts.router.receive(name: "joinChat", payload: .string(chat), from: stranger, ack: answers.ack)
            await parts.router.receive(name: "joinChat", payload: .string(chat), from: .init(userID: users[1], socketID: "s1"), ack: answers.ack)
            await parts.router.receive(name: "leaveChat", payload: .string(chat), from: .init(userID: users[1], socketID: "s1"), ack: nil)
            #expect(
                answers.all == [
                    #"{"error":{"code":"unknown_event","message":"Unknown event dance."}}"#,
                    #"{"error":{"code":"invalid_request","message":"`chatId` and a whole-number `seq` are required."}}"#,
                    #"{"error":{"code":"chat_not_found","message":"There is no such chat."}}"#,
                    #"{"ok":true}"#,
                ]
            )
        }
    }
}

/// A directory in which every id is a person: the fan-out tests make their users' ids up.
struct EveryoneDirectory: UserDirectory {
    func profiles(of ids: [String]) async throws -> [String: PublicUser] {
        Dictionary(uniqueKeysWithValues: Set(ids).map { ($0, PublicUser(id: $0, name: "User", avatarUrl: nil)) })
    }
}

/// Admits no token: the sockets of these tests are admitted by hand.
private struct NoTokens: AccessTokenVerifying {
    func verify(token: String) async throws -> VerifiedAccessToken { throw APIError.unauthorized() }
}
