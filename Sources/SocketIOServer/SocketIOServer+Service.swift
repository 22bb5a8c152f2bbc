public import ServiceLifecycle

extension SocketIOServer: Service {
    /// Waits for graceful shutdown, then closes every session: long-polls are answered and WebSockets closed, so the
    /// HTTP server (stopped after this in the service group) has no request left waiting.
    public func run() async throws {
        try? await gracefulShutdown()
        self.shutdown()
    }
}
