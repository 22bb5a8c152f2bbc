import Synchronization
import Testing

@testable import ParleyStore

/// The SQLite writer's lock: first come, first served, except that the message writer's batches go first (issue 12:
/// a flood of sign-ins must not queue in front of a conversation).
@Suite struct AsyncLockTests {
    @Test func waitersWithPriorityGoAheadOfTheRestAndEachLaneKeepsItsOrder() async {
        let lock = AsyncLock()
        let order = Log()
        let (gate, open) = AsyncStream<Void>.makeStream()
        await withTaskGroup(of: Void.self) { group in
            // The holder keeps the lock until the gate opens, while the others line up one by one.
            group.addTask {
                await lock.withLock {
                    for await _ in gate { break }
                }
            }
            await Self.until { lock.waiting == 0 && order.names.isEmpty }
            try? await Task.sleep(for: .milliseconds(50))
            let arrivals: [(String, Bool)] = [("a", false), ("b", false), ("P1", true), ("c", false), ("P2", true)]
            for (index, (name, priority)) in arrivals.enumerated() {
                group.addTask {
                    await lock.withLock(priority: priority) { order.append(name) }
                }
                await Self.until { lock.waiting == index + 1 }
            }
            open.yield()
            open.finish()
        }
        #expect(order.names == ["P1", "P2", "a", "b", "c"])
        #expect(lock.waiting == 0)
        // Free again: a late comer takes it at once.
        await lock.withLock { order.append("late") }
        #expect(order.names.last == "late")
    }

    /// Names in the order their holders took the lock.
    final class Log: Sendable {
        private let state = Mutex<[String]>([])
        var names: [String] { self.state.withLock { $0 } }
        func append(_ name: String) { self.state.withLock { $0.append(name) } }
    }

    /// Waits (yielding) until `condition` holds, at most ten seconds.
    static func until(_ condition: () -> Bool) async {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition(), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(1)) }
    }
}
