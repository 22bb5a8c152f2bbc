import Foundation
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import Testing

@testable import ChatService

/// Users straight into the table: the chat store only needs them to exist.
func makeUsers(_ count: Int, in database: Database) async throws -> [String] {
    var ids: [String] = []
    try await database.transaction { sql in
        for index in 0..<count {
            let id = Identifier.make()
            try await sql.raw(
                "INSERT INTO users (id, email, name, name_search, created_at, updated_at) VALUES (\(bind: id), \(bind: "u\(index)-\(id)@t.co"), \(bind: "User \(index)"), \(bind: "user \(index)"), 1, 1)"
            ).run()
            ids.append(id)
        }
    }
    return ids
}

@Suite("Chat storage on SQLite and PostgreSQL")
struct ChatStoreTests {
    @Test("a direct chat between two users is unique, whoever opens it", arguments: DatabaseKind.allCases)
    func directChatIsUnique(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let first = try await store.direct(between: users[0], and: users[1], now: 1)
            let second = try await store.direct(between: users[1], and: users[0], now: 2)
            #expect(first.created)
            #expect(!second.created)
            #expect(first.id == second.id)
        }
    }

    @Test("concurrent senders into one chat get dense, unique seqs", arguments: DatabaseKind.allCases)
    func concurrentSendersGetDenseSeqs(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(4, in: database)
            let chat = try await store.group(named: "g", creator: users[0], members: users, now: 1)
            let seqs = try await withThrowingTaskGroup(of: Int64.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        guard
                            case .created(let record) = try await store.append(
                                chatID: chat,
                                senderID: users[index % 4],
                                text: "m\(index)",
                                file: nil,
                                clientMessageID: "c\(index)",
                                now: Int64(index)
                            )
                        else { throw TestSetupError("not created") }
                        return record.seq
                    }
                }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
            #expect(seqs.sorted() == Array(1...200))
            let page = try await store.messages(in: chat, before: nil, after: nil, limit: 200)
            #expect(page.records.map(\.seq) == Array(1...200))
            #expect(!page.hasMore)
        }
    }

    @Test("a replayed clientMessageId returns the stored message and creates nothing", arguments: DatabaseKind.allCases)
    func replayedClientMessageID(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            guard
                case .created(let first) = try await store.append(
                    chatID: chat,
                    senderID: users[0],
                    text: "hi",
                    file: nil,
                    clientMessageID: "x",
                    now: 2
                )
            else {
                Issue.record("not created")
                return
            }
            guard
                case .duplicate(let again) = try await store.append(
                    chatID: chat,
                    senderID: users[0],
                    text: "other",
                    file: nil,
                    clientMessageID: "x",
                    now: 3
                )
            else {
                Issue.record("replay created a message")
                return
            }
            #expect(again == first)
            // The same id from another sender is another message.
            guard
                case .created(let other) = try await store.append(
                    chatID: chat,
                    senderID: users[1],
                    text: "yo",
                    file: nil,
                    clientMessageID: "x",
                    now: 4
                )
            else {
                Issue.record("not created")
                return
            }
            #expect(other.seq == 2)
        }
    }

    @Test("a non-member cannot append", arguments: DatabaseKind.allCases)
    func nonMemberCannotAppend(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(3, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            guard case .notMember = try await store.append(chatID: chat, senderID: users[2], text: "x", file: nil, clientMessageID: nil, now: 2)
            else {
                Issue.record("a stranger appended")
                return
            }
        }
    }

    @Test("read pointers only move forward and never past the last message", arguments: DatabaseKind.allCases)
    func readPointerMovesForwardOnly(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            for index in 0..<5 {
                _ = try await store.append(chatID: chat, senderID: users[0], text: "m\(index)", file: nil, clientMessageID: nil, now: 2)
            }
            #expect(try await store.markRead(chatID: chat, userID: users[1], seq: 3) == 3)
            #expect(try await store.markRead(chatID: chat, userID: users[1], seq: 2) == nil)
            #expect(try await store.markRead(chatID: chat, userID: users[1], seq: 3) == nil)
            #expect(try await store.markRead(chatID: chat, userID: users[1], seq: 99) == 5)
            // Sending moved the sender's own pointer.
            let members = try await store.members(of: [chat])
            #expect(members.first { $0.userID == users[0] }?.lastReadSeq == 5)
        }
    }

    @Test("history pages by before and after, in ascending seq", arguments: DatabaseKind.allCases)
    func historyPages(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            for index in 0..<10 {
                _ = try await store.append(chatID: chat, senderID: users[index % 2], text: "m\(index)", file: nil, clientMessageID: nil, now: 2)
            }
            let latest = try await store.messages(in: chat, before: nil, after: nil, limit: 3)
            #expect(latest.records.map(\.seq) == [8, 9, 10])
            #expect(latest.hasMore)
            let older = try await store.messages(in: chat, before: 8, after: nil, limit: 3)
            #expect(older.records.map(\.seq) == [5, 6, 7])
            let catchUp = try await store.messages(in: chat, before: nil, after: 7, limit: 50)
            #expect(catchUp.records.map(\.seq) == [8, 9, 10])
            #expect(!catchUp.hasMore)
            let first = try await store.messages(in: chat, before: 3, after: nil, limit: 50)
            #expect(first.records.map(\.seq) == [1, 2])
            #expect(!first.hasMore)
        }
    }

    @Test("the chat list is newest activity first, pages by keyset, and shows last messages", arguments: DatabaseKind.allCases)
    func chatListOrder(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(6, in: database)
            var chats: [String] = []
            for index in 1..<6 {
                chats.append(try await store.direct(between: users[0], and: users[index], now: Int64(index)).id)
            }
            _ = try await store.append(chatID: chats[1], senderID: users[2], text: "newest", file: nil, clientMessageID: nil, now: 100)
            let firstPage = try await store.chats(of: users[0], after: nil, limit: 2)
            #expect(firstPage.map(\.id) == [chats[1], chats[4]])
            let last = firstPage[1]
            let secondPage = try await store.chats(of: users[0], after: (last.updatedAt, last.id), limit: 10)
            #expect(secondPage.map(\.id) == [chats[3], chats[2], chats[0]])
            let lastMessages = try await store.lastMessages(of: firstPage + secondPage)
            #expect(lastMessages.count == 1)
            #expect(lastMessages[chats[1]]?.text == "newest")
            #expect(try await store.chats(of: users[5], after: nil, limit: 10).map(\.id) == [chats[4]])
        }
    }
}

@Suite("Chat storage under racing replays")
struct ChatStoreReplayTests {
    @Test("concurrent sends of one clientMessageId store one message and answer it to all", arguments: DatabaseKind.allCases)
    func concurrentReplays(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chat = try await store.direct(between: users[0], and: users[1], now: 1).id
            let outcomes = try await withThrowingTaskGroup(of: (created: Bool, id: String).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        switch try await store.append(chatID: chat, senderID: users[0], text: "once", file: nil, clientMessageID: "storm", now: 2) {
                        case .created(let record): return (true, record.id)
                        case .duplicate(let record): return (false, record.id)
                        default: throw TestSetupError("neither stored nor a duplicate")
                        }
                    }
                }
                return try await group.reduce(into: [(created: Bool, id: String)]()) { $0.append($1) }
            }
            #expect(outcomes.filter(\.created).count == 1)
            #expect(Set(outcomes.map(\.id)).count == 1)
            guard
                case .created(let next) = try await store.append(
                    chatID: chat,
                    senderID: users[1],
                    text: "next",
                    file: nil,
                    clientMessageID: nil,
                    now: 3
                )
            else {
                Issue.record("not created")
                return
            }
            #expect(next.seq == 2)
        }
    }
}

@Suite("History seeding on SQLite and PostgreSQL")
struct HistorySeederTests {
    @Test("seeded messages take dense seqs after the chat's, are dated as history, and leave read pointers alone", arguments: DatabaseKind.allCases)
    func seedsAfterExistingMessages(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let seeder = HistorySeeder(database: database)
            let chat = try await seeder.directChat(between: users[0], and: users[1])
            _ = try await store.append(chatID: chat, senderID: users[0], text: "live", file: nil, clientMessageID: nil, now: Timestamp.millis())
            var progress: [Int64] = []
            let last = try await seeder.seed(chatID: chat, count: 2500, batchSize: 1000) { progress.append($0) }
            #expect(last == 2501)
            #expect(progress == [1001, 2001, 2501])
            let page = try await store.messages(in: chat, before: nil, after: 1, limit: 200)
            #expect(page.records.map(\.seq) == Array(2...201))
            #expect(page.records.allSatisfy { $0.text == "Message \($0.seq)" && $0.kind == "text" })
            #expect(page.records.allSatisfy { $0.createdAt < Timestamp.millis() - HistorySeeder.age })
            #expect(Set(page.records.map(\.senderID)) == Set(users))
            #expect(try await store.chat(chat, visibleTo: users[1])?.lastSeq == 2501)
            let pointers = try await store.members(of: [chat])
            #expect(pointers.first { $0.userID == users[0] }?.lastReadSeq == 1)
            #expect(pointers.first { $0.userID == users[1] }?.lastReadSeq == 0)
            // Their ids are dated too: catching up on recent messages finds the live one only.
            let recent = try await store.recentVersionRanges(since: Timestamp.millis() - 60_000)
            #expect(recent.map(\.chatID) == [chat] && recent.first?.firstVersion == 1 && recent.first?.lastVersion == 1)
        }
    }

    @Test("seeding refuses a chat that does not exist and a direct chat with oneself", arguments: DatabaseKind.allCases)
    func refusals(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let seeder = HistorySeeder(database: database)
            let users = try await makeUsers(1, in: database)
            await #expect(throws: ChatError.chatNotFound) { try await seeder.seed(chatID: Identifier.make(), count: 5) }
            await #expect(throws: ChatError.chatNotFound) { try await seeder.seed(chatID: "not-a-chat", count: 5) }
            await #expect(throws: ChatError.invalidMembers("A direct chat needs two different users.")) {
                try await seeder.directChat(between: users[0], and: users[0])
            }
        }
    }

    @Test(
        "search pages the same whether hits are among the newest messages or only in the index, in one chat or all",
        arguments: DatabaseKind.allCases
    )
    func searchAcrossTheRecentWindowAndTheIndex(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = ChatStore(database: database)
            let users = try await makeUsers(2, in: database)
            let chats = [
                try await store.group(named: "a", creator: users[0], members: users, now: 1),
                try await store.group(named: "b", creator: users[0], members: users, now: 1),
                try await store.group(named: "c", creator: users[1], members: [users[1]], now: 1),
            ]
            // Every message says "common"; "rare" is in a few old ones; "pear" in chat c, which users[0] is not in.
            var texts: [(chat: String, id: String, text: String)] = []
            for index in 0..<60 {
                let chat = chats[index % 3]
                let text = "common \(index)" + ([3, 4, 7, 19, 22, 40].contains(index) ? " rare" : "") + (index % 3 == 2 ? " pear" : "")
                guard
                    case .created(let record) = try await store.append(
                        chatID: chat,
                        senderID: chat == chats[2] ? users[1] : users[index % 2],
                        text: text,
                        file: nil,
                        clientMessageID: nil,
                        now: Int64(index)
                    )
                else { throw TestSetupError("not created") }
                texts.append((chat, record.id, text))
            }
            // Newest first: in the order of storing, except across chats on PostgreSQL, by id (time-ordered, to the ms).
            let newestFirst = { (chat: String?) in
                kind == .postgres && chat == nil ? texts.sorted { $0.id > $1.id } : texts.reversed()
            }
            func everyPage(_ word: SearchWord, in chat: String?, limit: Int, window: Int) async throws -> [String] {
                var found: [String] = []
                var cursor: ChatStore.SearchCursor?
                repeat {
                    let page = try await store.search(words: [word], userID: users[0], chatID: chat, after: cursor, limit: limit, window: window)
                    #expect(page.records.count <= limit)
                    found += page.records.map { $0.text ?? "" }
                    cursor = page.next
                } while cursor != nil
                return found
            }
            for window in [1, 4, 10, 1_000] {
                for chat in [nil, chats[0]] as [String?] {
                    for word in [
                        SearchWord(text: "common", isPrefix: false), SearchWord(text: "rare", isPrefix: false),
                        SearchWord(text: "comm", isPrefix: true), SearchWord(text: "ra", isPrefix: true),
                    ] {
                        let expected = newestFirst(chat).filter {
                            $0.chat != chats[2] && (chat == nil || $0.chat == chat)
                                && $0.text.split(separator: " ").contains { word.isPrefix ? $0.hasPrefix(word.text) : $0 == word.text }
                        }.map(\.text)
                        #expect(
                            try await everyPage(word, in: chat, limit: 3, window: window) == expected,
                            "\(word) in \(chat ?? "all chats"), window \(window)"
                        )
                    }
                    #expect(try await everyPage(SearchWord(text: "pear", isPrefix: false), in: chat, limit: 3, window: window).isEmpty)
                    #expect(try await everyPage(SearchWord(text: "comm", isPrefix: false), in: chat, limit: 3, window: window).isEmpty)
                }
            }
        }
    }
}
