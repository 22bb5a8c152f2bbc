import Synchronization

/// A lock for async code: one holder at a time, waiters resumed in order, those that ask for priority before the rest.
final class AsyncLock: Sendable {
    private struct Queue {
        var waiters: [CheckedContinuation<Void, Never>] = []
        var head = 0

        mutating func append(_ waiter: CheckedContinuation<Void, Never>) { self.waiters.append(waiter) }

        mutating func next() -> CheckedContinuation<Void, Never>? {
            guard self.head < self.waiters.count else {
                self.waiters.removeAll(keepingCapacity: true)
                self.head = 0
                return nil
            }
            self.head += 1
            return self.waiters[self.head - 1]
        }
    }

    private struct State {
        var locked = false
        var first = Queue()
        var rest = Queue()
    }

    private let state = Mutex(State())

    /// How many wait for the lock (for tests).
    var waiting: Int {
        self.state.withLock { ($0.first.waiters.count - $0.first.head) + ($0.rest.waiters.count - $0.rest.head) }
    }

    /// Runs `body` while holding the lock; with `priority`, ahead of every waiter that did not ask for it.
    func withLock<T>(priority: Bool = false, _ body: () async throws -> T) async rethrows -> T {
        await self.acquire(priority: priority)
        defer { self.release() }
        return try await body()
    }

    private func acquire(priority: Bool) async {
        let acquired = self.state.withLock { state -> Bool in
            if state.locked { return false }
            state.locked = true
            return true
        }
        if acquired { return }
        await withCheckedContinuation { continuation in
            let handedOver = self.state.withLock { state -> Bool in
                // The holder may have released between the two critical sections.
                if !state.locked {
                    state.locked = true
                    return true
                }
                if priority { state.first.append(continuation) } else { state.rest.append(continuation) }
                return false
            }
            if handedOver { continuation.resume() }
        }
    }

    private func release() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            // The lock stays held while a waiter is resumed: ownership passes straight to it.
            guard let next = state.first.next() ?? state.rest.next() else {
                state.locked = false
                return nil
            }
            return next
        }
        next?.resume()
    }
}
