import HeapModule
import Synchronization

/// The deadlines of every Engine.IO session of a server (a new session's connect timeout, its next ping, a ping's pong
/// deadline, a closing session's drain) in one heap, run by one loop in the server's `run()`: a session costs no task and
/// no timer of its own, and no deadline outlives the server.
///
/// A session keeps one deadline at a time; scheduling another makes the one before it stale (the session ignores a
/// deadline whose token is not its current one), and the heap holds the session weakly, so a finished session is not kept
/// alive by the deadlines it left behind. Stale entries (a pong deadline once the pong came, for `pingTimeout`) are
/// dropped whenever the heap doubles past its size after the last such sweep, so it holds at most about two entries per
/// open session whatever the timings.
final class SessionClock: Sendable {
    /// What the clock calls back when a deadline passes: an Engine.IO session.
    protocol Owner: AnyObject, Sendable {
        /// The deadline scheduled with `token` passed; the owner ignores it when it has scheduled another since.
        func deadlinePassed(token: UInt64)
        /// Whether `token` is the owner's live deadline (the one it has not replaced).
        func isCurrent(token: UInt64) -> Bool
    }

    /// A session's deadline in the heap.
    struct Entry: Comparable {
        let deadline: ContinuousClock.Instant
        /// Breaks ties in scheduling order.
        let order: UInt64
        let token: UInt64
        weak var owner: (any Owner)?

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.deadline, lhs.order) < (rhs.deadline, rhs.order)
        }

        static func == (lhs: Entry, rhs: Entry) -> Bool {
            lhs.order == rhs.order
        }
    }

    /// What the loop is doing, so that a deadline earlier than its sleep wakes it.
    enum Loop {
        /// Taking due deadlines: it looks at the heap again before it sleeps.
        case running
        /// Asleep until the instant (nil: until woken), with the continuation that wakes it once it is parked.
        case sleeping(until: ContinuousClock.Instant?, waiter: CheckedContinuation<Void, Never>?)
        /// Woken before it parked: its next wait returns at once.
        case woken
        /// Finished: it returns, and nothing more is scheduled.
        case finished
    }

    struct State {
        var heap = Heap<Entry>()
        var lastOrder: UInt64 = 0
        var loop = Loop.running
        /// The size at which stale entries are swept out.
        var sweepAt: Int
    }

    private let state: Mutex<State>
    /// The heap size under which stale entries are not swept.
    private let sweepFloor: Int

    /// A clock whose heap is swept of stale entries once it holds more than `sweepFloor` of them and twice what the last
    /// sweep left.
    init(sweepFloor: Int = 1024) {
        self.sweepFloor = sweepFloor
        self.state = Mutex(State(sweepAt: sweepFloor))
    }

    /// The number of deadlines in the heap, stale ones included.
    var count: Int { self.state.withLock { $0.heap.count } }

    /// Calls `owner.deadlinePassed(token:)` at `deadline` (or soon after), unless the clock has finished or the owner is gone.
    func schedule(_ owner: some Owner, token: UInt64, at deadline: ContinuousClock.Instant) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if case .finished = state.loop { return nil }
            state.lastOrder += 1
            state.heap.insert(Entry(deadline: deadline, order: state.lastOrder, token: token, owner: owner))
            if state.heap.count > state.sweepAt {
                // Owners are asked under the clock's lock: they never schedule while holding their own.
                state.heap = Heap(state.heap.unordered.filter { $0.owner?.isCurrent(token: $0.token) ?? false })
                state.sweepAt = max(self.sweepFloor, 2 * state.heap.count)
            }
            guard case .sleeping(let until, let waiter) = state.loop, until.map({ deadline < $0 }) ?? true else { return nil }
            state.loop = .woken
            return waiter
        }
        waiter?.resume()
    }

    /// Fires deadlines as they pass until ``finish()`` or cancellation.
    func run() async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            var due: [Entry] = []
            let next = self.state.withLock { state -> ContinuousClock.Instant?? in
                if case .finished = state.loop { return .none }
                while let first = state.heap.min, first.deadline <= now {
                    due.append(state.heap.removeMin())
                }
                guard due.isEmpty else {
                    state.loop = .running
                    return .some(now)
                }
                let until = state.heap.min?.deadline
                state.loop = .sleeping(until: until, waiter: nil)
                return .some(until)
            }
            guard case .some(let until) = next else { return }
            guard due.isEmpty else {
                for entry in due {
                    entry.owner?.deadlinePassed(token: entry.token)
                }
                continue
            }
            await self.sleep(until: until)
        }
    }

    /// Stops the loop; deadlines scheduled afterwards never fire.
    func finish() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer {
                state.loop = .finished
                state.heap = Heap()
            }
            guard case .sleeping(_, let waiter) = state.loop else { return nil }
            return waiter
        }
        waiter?.resume()
    }

    /// Sleeps until `until` (for ever when nil), an earlier deadline, ``finish()`` or cancellation.
    private func sleep(until: ContinuousClock.Instant?) async {
        await withTaskGroup(of: Void.self) { group in
            if let until {
                group.addTask { try? await Task.sleep(until: until, clock: .continuous) }
            }
            group.addTask { await self.parkUntilWoken() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns when a schedule or ``finish()`` wakes the sleeping loop, or when cancelled.
    private func parkUntilWoken() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let parked = self.state.withLock { state -> Bool in
                    guard case .sleeping(let until, .none) = state.loop, !Task.isCancelled else { return false }
                    state.loop = .sleeping(until: until, waiter: continuation)
                    return true
                }
                if !parked { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard case .sleeping(let until, let waiter?) = state.loop else { return nil }
                state.loop = .sleeping(until: until, waiter: nil)
                return waiter
            }
            waiter?.resume()
        }
    }
}
