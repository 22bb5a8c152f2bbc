import Synchronization

/// Events recorded by a test double, with a wait that wakes on each new event (no polling, no fixed sleeps).
final class EventLog<Event: Sendable>: Sendable {
    private struct State {
        var events: [Event] = []
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var lastID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Everything recorded so far.
    var events: [Event] { self.state.withLock { $0.events } }

    /// Records an event and wakes the waiters.
    func append(_ event: Event) {
        let waiters = self.state.withLock { state in
            state.events.append(event)
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.resume()
        }
    }

    /// Waits until `predicate` holds for the events recorded, or `timeout` passes; returns whether it held.
    func wait(timeout: Duration = .seconds(10), until predicate: @Sendable ([Event]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (events, count) = self.state.withLock { ($0.events, $0.events.count) }
            if predicate(events) { return true }
            if ContinuousClock.now >= deadline { return false }
            await self.change(after: count, deadline: deadline)
        }
    }

    /// Returns when more than `count` events are recorded, or at `deadline`.
    private func change(after count: Int, deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.appended(after: count) }
            group.addTask { try? await Task.sleep(until: deadline) }
            await group.next()
            group.cancelAll()
        }
    }

    private func appended(after count: Int) async {
        let id = self.state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.state.withLock { state -> Bool in
                    guard state.events.count == count, !Task.isCancelled else { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
