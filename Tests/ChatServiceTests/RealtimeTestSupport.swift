import Foundation
import ParleyTestSupport
import SocketIOServer
import Synchronization
import Testing

@testable import ChatService

/// A clock that moves only when the test advances it, so grace periods and expiries are tested without waiting for them.
final class TestClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: self.offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - self.offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var id: UInt64
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var lastID: UInt64 = 0
    }

    private let state = Mutex(State())

    var now: Instant { self.state.withLock { $0.now } }
    var minimumResolution: Duration { .zero }

    /// How many tasks are sleeping on this clock.
    var sleeperCount: Int { self.state.withLock { $0.sleepers.count } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = self.state.withLock { state -> UInt64 in
            state.lastID += 1
            return state.lastID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = self.state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let sleeper = self.state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the time on and wakes every sleeper whose deadline has come.
    func advance(by duration: Duration) {
        let due = self.state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits until `count` tasks sleep on this clock (a timer armed by another task is armed when it sleeps).
    func sleepers(_ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while self.sleeperCount < count {
            guard ContinuousClock.now < deadline else { throw TestSetupError("\(self.sleeperCount) sleepers, not \(count)") }
            await Task.yield()
        }
    }
}

/// A bus that records what is published, in order.
final class RecordingBus: ChatEventBus {
    private let published = Mutex<[ChatEvent]>([])

    var events: [ChatEvent] { self.published.withLock { $0 } }

    func publish(_ event: ChatEvent) {
        self.published.withLock { $0.append(event) }
    }

    func subscribe() -> AsyncStream<ChatEvent> {
        AsyncStream { $0.finish() }
    }

    /// Waits until `predicate` holds for what was published (at most ten seconds).
    func wait(until predicate: ([ChatEvent]) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !predicate(self.events) {
            guard ContinuousClock.now < deadline else { throw TestSetupError("timed out; published \(self.events)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Runs `body` while `tasks` run, then lets them finish, so everything they published has been published.
func whileRunning<T: Sendable>(_ tasks: BackgroundTasks, _ body: () async throws -> T) async throws -> T {
    async let running: Void = tasks.run()
    do {
        let result = try await body()
        tasks.finish()
        await running
        return result
    } catch {
        // Leaving the scope cancels what still sleeps.
        tasks.finish()
        throw error
    }
}
