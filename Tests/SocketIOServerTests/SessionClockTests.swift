import HTTPTypes
import Logging
import Synchronization
import Testing

@testable import SocketIOServer

/// The one clock that runs every session's deadlines: order, an earlier deadline waking a long sleep, stale and
/// abandoned deadlines, and its end.
@Suite struct SessionClockTests {
    /// Records the deadlines that reach it, with when they did.
    final class Recorder: SessionClock.Owner {
        let name: String
        let fired: Mutex<[(name: String, token: UInt64, at: ContinuousClock.Instant)]>
        let log: EventLog<String>

        init(_ name: String, log: EventLog<String>) {
            self.name = name
            self.log = log
            self.fired = Mutex([])
        }

        func deadlinePassed(token: UInt64) {
            self.fired.withLock { $0.append((self.name, token, .now)) }
            self.log.append("\(self.name)\(token)")
        }

        func isCurrent(token: UInt64) -> Bool { true }
    }

    final class Counter: Sendable {
        let value = Mutex(0)
    }

    /// Runs `body` with a running clock, then finishes it and waits for its loop to return.
    static func withRunningClock(_ body: (SessionClock) async throws -> Void) async throws {
        let clock = SessionClock()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await clock.run() }
            defer { clock.finish() }
            try await body(clock)
        }
    }

    @Test func deadlinesFireInTheirOrderNotTheOrderTheyWereSet() async throws {
        let log = EventLog<String>()
        let owner = Recorder("s", log: log)
        try await Self.withRunningClock { clock in
            let now = ContinuousClock.now
            clock.schedule(owner, token: 3, at: now + .milliseconds(90))
            clock.schedule(owner, token: 1, at: now + .milliseconds(30))
            clock.schedule(owner, token: 2, at: now + .milliseconds(60))
            #expect(await log.wait(timeout: .seconds(5)) { $0.count == 3 })
            #expect(log.events == ["s1", "s2", "s3"])
            for (_, token, at) in owner.fired.withLock({ $0 }) {
                #expect(at >= now + .milliseconds(30 * Int(token)))
            }
        }
    }

    /// The loop sleeps until its earliest deadline; one set earlier than that must wake it, or a new session's ping would
    /// wait for a pong deadline seconds away.
    @Test func anEarlierDeadlineWakesALongSleep() async throws {
        let log = EventLog<String>()
        let owner = Recorder("s", log: log)
        try await Self.withRunningClock { clock in
            clock.schedule(owner, token: 1, at: .now + .seconds(60))
            try await Task.sleep(for: .milliseconds(50))
            let set = ContinuousClock.now
            clock.schedule(owner, token: 2, at: set + .milliseconds(20))
            #expect(await log.wait(timeout: .seconds(5)) { $0 == ["s2"] })
            let fired = try #require(owner.fired.withLock { $0.first })
            #expect(fired.at - set < .seconds(2))
        }
    }

    /// The heap holds its owners weakly: a session that finished is freed even while deadlines it set are pending, and
    /// those deadlines then fire for nobody.
    @Test func aDeadlineDoesNotKeepItsOwnerAlive() async throws {
        let log = EventLog<String>()
        try await Self.withRunningClock { clock in
            weak var released: Recorder?
            do {
                let owner = Recorder("gone", log: log)
                released = owner
                clock.schedule(owner, token: 1, at: .now + .milliseconds(100))
            }
            #expect(released == nil)
            #expect(clock.count == 1)
            let witness = Recorder("kept", log: log)
            clock.schedule(witness, token: 2, at: .now + .milliseconds(200))
            #expect(await log.wait(timeout: .seconds(5)) { $0 == ["kept2"] })
            #expect(clock.count == 0)
        }
    }

    /// After finish nothing fires, nothing new is held, and run() returns.
    @Test func finishEndsTheLoopAndDropsItsDeadlines() async throws {
        let log = EventLog<String>()
        let owner = Recorder("s", log: log)
        let clock = SessionClock()
        clock.schedule(owner, token: 1, at: .now + .milliseconds(50))
        let loop = Task { await clock.run() }
        clock.finish()
        await loop.value
        clock.schedule(owner, token: 2, at: .now)
        #expect(clock.count == 0)
        try await Task.sleep(for: .milliseconds(100))
        #expect(log.events.isEmpty)
    }

    /// Many sessions each keep one live deadline: through rounds of pings and pongs the heap holds at most about two
    /// entries per session, not one per ping sent within `pingTimeout` (each pong leaves a stale pong deadline behind:
    /// 10 pings each, without the sweep, would hold 1,000 here).
    @Test func theHeapStaysBoundedBySessionsNotPings() async throws {
        let configuration = SocketIOConfiguration(pingInterval: .milliseconds(20), pingTimeout: .seconds(30))
        let clock = SessionClock(sweepFloor: 0)
        let sessions = (0..<100).map { index in
            EngineSession(
                sid: "s\(index)",
                transport: .polling,
                handshake: SocketIOHandshake(headers: [:], query: [:], remoteAddress: nil),
                configuration: configuration,
                clock: clock,
                logger: .init(label: "SessionClockTests")
            )
        }
        let pings = Counter()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await clock.run() }
            for session in sessions {
                session.start(hooks: .init(closed: { _ in }, finished: {}))
                session.setAttached(true)
                // The client: answers every ping at once.
                group.addTask {
                    while case .packets(let batch) = await session.poll() {
                        for _ in batch {
                            pings.value.withLock { $0 += 1 }
                            session.receivedPong()
                        }
                    }
                }
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while pings.value.withLock({ $0 }) < sessions.count * 10 && ContinuousClock.now < deadline {
                #expect(clock.count <= 2 * sessions.count + 1)
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(pings.value.withLock { $0 } >= sessions.count * 10)
            #expect(clock.count <= 2 * sessions.count + 1)
            for session in sessions {
                #expect(session.isOpen)
                session.close(.transportClose)
            }
            clock.finish()
        }
    }
}
