/// Work that socket callbacks start but a service owns: every task added runs in the task group of ``run()``, inside the
/// service's own `run()`, so a graceful shutdown cancels what is still waiting and nothing outlives the service. The
/// Socket.IO server hands its handler's `disconnected` calls to one; the chat service's realtime parts their timers.
public final class BackgroundTasks: Sendable {
    public typealias Work = @Sendable () async -> Void

    private let work: AsyncStream<Work>
    private let continuation: AsyncStream<Work>.Continuation

    public init() {
        (self.work, self.continuation) = AsyncStream.makeStream(of: Work.self, bufferingPolicy: .unbounded)
    }

    /// Runs `work` in the owner's task group; dropped once the group has finished.
    public func add(_ work: @escaping Work) {
        self.continuation.yield(work)
    }

    /// Runs the added work until ``finish()`` or cancellation, then waits for what is running (cancelled, if the caller was).
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await work in self.work {
                group.addTask(operation: work)
            }
        }
    }

    /// Takes no more work: ``run()`` returns once the work already added has ended.
    public func finish() {
        self.continuation.finish()
    }
}
