public import ServiceLifecycle

extension SocketIOServer: Service {
    /// Runs the sessions' heartbeats and deadlines and the handler's `disconnected` calls until graceful shutdown, then
    /// closes every session (long-polls are answered and WebSockets closed, so the HTTP server, stopped after this in the
    /// service group, has no request left waiting) and returns once the handler has heard of every socket that ended.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.clock.run() }
            group.addTask { await self.tasks.run() }
            try? await gracefulShutdown()
            self.shutdown()
            self.clock.finish()
            self.tasks.finish()
        }
    }
}
