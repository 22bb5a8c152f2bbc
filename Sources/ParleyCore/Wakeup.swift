/// A doorbell between tasks of one process: rings coalesce, a sleeper wakes on the next ring or its timeout.
public final class Wakeup: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Wakes the sleeper, or makes its next wait return at once.
    public func ring() {
        self.continuation.yield()
    }

    /// Waits for a ring or for `timeout`, whichever comes first. Only one task may wait.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var iterator = self.stream.makeAsyncIterator()
                _ = await iterator.next()
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
