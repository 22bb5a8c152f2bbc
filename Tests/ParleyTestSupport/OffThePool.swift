public import Foundation

/// Runs blocking work (starting a child process and reading its first line, waiting for it to end) on a thread of its
/// own and returns its result.
///
/// Tests run concurrently on Swift's cooperative pool, which has one thread per core: two on this machine. A fixture that
/// blocks one of them while python3 starts under load (a second or more) starves every other test's timers, and the
/// heartbeat tests beside it fail. Blocking work goes here instead.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
