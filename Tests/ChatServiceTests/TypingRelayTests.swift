import ParleyStore
import ParleyTestSupport
import SocketIOServer
import Testing

@testable import ChatService

@Suite("Typing relayed to a chat and expiring by itself, on a test clock")
struct TypingRelayTests {
    /// A relay over a fresh SQLite database with a chat of two members, and a stranger.
    func withRelay(
        _ body: (TypingRelay, TestClock, RecordingBus, BackgroundTasks, _ chat: String, _ users: [String]) async throws -> Void
    ) async throws {
        try await TestDatabases.with(.sqlite) { database in
            let users = try await makeUsers(3, in: database)
            let store = ChatStore(database: database)
            let chat = try await store.group(named: "g", creator: users[0], members: Array(users[0...1]), now: 1)
            let (clock, bus, tasks) = (TestClock(), RecordingBus(), BackgroundTasks())
            let relay = TypingRelay(membership: MembershipCache(store: store), bus: bus, lifetime: .seconds(5), clock: clock, tasks: tasks)
            try await body(relay, clock, bus, tasks, chat, users)
        }
    }

    @Test("typing expires after its lifetime without a renewal; a renewal is not relayed again and moves the expiry")
    func expiresAfterLastRenewal() async throws {
        try await self.withRelay { relay, clock, bus, tasks, chat, users in
            try await whileRunning(tasks) {
                try await relay.typing(chatID: chat, userID: users[0], isTyping: true)
                try await clock.sleepers(1)
                clock.advance(by: .seconds(4))
                try await relay.typing(chatID: chat, userID: users[0], isTyping: true)
                try await clock.sleepers(2)
                // The first expiry is due, but the renewal moved it on.
                clock.advance(by: .seconds(1))
                #expect(clock.sleeperCount == 1)
                #expect(bus.events == [.typing(chatID: chat, userID: users[0], isTyping: true)])
                clock.advance(by: .seconds(4))
            }
            #expect(
                bus.events == [.typing(chatID: chat, userID: users[0], isTyping: true), .typing(chatID: chat, userID: users[0], isTyping: false)]
            )
        }
    }

    @Test("stopping is relayed once and ends the timer; stopping what had not started, and strangers' typing, are ignored")
    func stopAndStrangers() async throws {
        try await self.withRelay { relay, clock, bus, tasks, chat, users in
            try await whileRunning(tasks) {
                try await relay.typing(chatID: chat, userID: users[1], isTyping: false)
                try await relay.typing(chatID: chat, userID: users[2], isTyping: true)
                try await relay.typing(chatID: "not-an-id", userID: users[0], isTyping: true)
                #expect(clock.sleeperCount == 0)
                try await relay.typing(chatID: chat, userID: users[0], isTyping: true)
                try await relay.typing(chatID: chat, userID: users[0], isTyping: false)
                try await relay.typing(chatID: chat, userID: users[0], isTyping: false)
                try await clock.sleepers(1)
                clock.advance(by: .seconds(5))
            }
            #expect(
                bus.events == [.typing(chatID: chat, userID: users[0], isTyping: true), .typing(chatID: chat, userID: users[0], isTyping: false)]
            )
        }
    }
}
