import Synchronization

/// A doorbell between tasks of one process: rings coalesce, a sleeper wakes on the next ring or its timeout.
public final class Wakeup: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes the sleeper, or makes its next wait return at once.
    public func ring() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Waits for a ring, `timeout` or cancellation, whichever comes first. Only one task may wait at a time.
    public func wait(timeout: Duration) async {
        let generation = self.state.withLock { state -> Int in
            state.generation += 1
            return state.generation
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.waitForRing(generation: generation) }
            // The first to end (the timeout, a ring, or cancellation) ends the other.
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns on a ring of this wait's generation, or when cancelled.
    private func waitForRing(generation: Int) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.rung || state.generation != generation || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.wake(generation: generation)
        }
    }

    private func wake(generation: Int) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.generation == generation, let waiter = state.waiter else {
                // Not waiting yet: bump the generation so the wait that is about to start returns at once.
                if state.generation == generation { state.generation += 1 }
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
