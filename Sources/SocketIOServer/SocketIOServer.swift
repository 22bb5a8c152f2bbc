public import Logging
import Metrics
import SocketIOProtocol

/// A Socket.IO v4 server (Engine.IO 4, Socket.IO 5) on Hummingbird: long-polling, WebSocket, and the upgrade between them.
///
/// Namespace "/" only; a user may hold many sockets, and `emit(_:toUsers:)` reaches all of them. Binary packets are refused.
public final class SocketIOServer: Sendable {
    /// The timings and limits in force.
    public let configuration: SocketIOConfiguration
    let handler: any SocketIOHandler
    let logger: Logger
    let registry = SocketRegistry()
    let limits: SessionLimits
    /// The handler's `disconnected` calls, run by ``run()``: a close can happen inside any task (another user's emit
    /// that overflows a queue, a heartbeat), and the call must neither run in that task nor outlive the server.
    let tasks = BackgroundTasks()
    /// Every session's heartbeat and deadlines, run by ``run()``.
    let clock = SessionClock()
    /// The event loops' queues of packets for their WebSockets.
    let outboxes = LoopOutboxes()

    /// Creates a server; add its routes to a router with ``addRoutes(to:path:)``.
    public init(configuration: SocketIOConfiguration, handler: any SocketIOHandler, logger: Logger) {
        self.configuration = configuration
        self.limits = SessionLimits(configuration.limits)
        self.handler = handler
        self.logger = logger
    }

    /// Queues `event` for every socket of each user; never blocks (a socket that does not keep up is disconnected).
    public func emit(_ event: EncodedEvent, toUsers users: some Sequence<String>) {
        let sockets = self.registry.sockets(ofUsers: users)
        // Packets for WebSockets are posted per event loop, one lock and at most one loop task per loop for the event.
        var posts: [(outbox: LoopOutbox, items: [(WebSocketSink, OutboxItem)])] = []
        let item = OutboxItem.send(.framed(event.frame), overflowCloses: true)
        for socket in sockets where socket.isConnected {
            guard let sink = socket.connection.session.route(event.packet) else { continue }
            if let index = posts.firstIndex(where: { $0.outbox === sink.outbox }) {
                posts[index].items.append((sink, item))
            } else {
                posts.append((sink.outbox, [(sink, item)]))
            }
        }
        for post in posts {
            post.outbox.post(contentsOf: post.items)
        }
        SocketIOMetrics.eventsDelivered.increment(by: sockets.count)
    }

    /// The connected sockets of `userID` on this server.
    public func sockets(ofUser userID: String) -> [SocketIOSocket] {
        self.registry.sockets(ofUser: userID)
    }

    /// The number of connected sockets.
    public var socketCount: Int { self.registry.socketCount }

    /// The number of users with a connected socket.
    public var userCount: Int { self.registry.userCount }

    /// The number of Engine.IO sessions still held, connected to a namespace or not.
    public var sessionCount: Int { self.registry.sessionCount }

    /// Closes every session (reason `server shutting down`); call it when the application stops.
    public func shutdown() {
        for connection in self.registry.allConnections {
            connection.session.close(.serverShuttingDown)
        }
    }

    /// The number of sessions without an admitted socket yet.
    public var unauthenticatedSessionCount: Int { self.limits.pendingCount }

    /// Opens a session on `transport` for a client the limits admit, and registers it; the Socket.IO layer hears of its
    /// close, the registry of its end; the limits' refusal otherwise.
    func openSession(transport: EngineSession.Transport, handshake: SocketIOHandshake) -> Result<SocketIOConnection, SessionLimits.Refusal> {
        let key = SessionLimits.key(of: handshake.remoteAddress)
        if let refusal = self.limits.open(from: key) {
            self.logger.debug("refusing a session", metadata: ["sio.refusal": "\(refusal)"])
            return .failure(refusal)
        }
        let pending = PendingSession(limits: self.limits, key: key)
        let session = EngineSession(
            sid: self.configuration.makeSessionID(),
            transport: transport,
            handshake: handshake,
            configuration: self.configuration,
            clock: self.clock,
            logger: self.logger
        )
        let connection = SocketIOConnection(
            session: session,
            handler: self.handler,
            registry: self.registry,
            pending: pending,
            tasks: self.tasks
        )
        self.registry.add(connection)
        let registry = self.registry
        session.start(
            hooks: EngineSession.Hooks(
                closed: { reason in connection.sessionClosed(reason) },
                finished: {
                    pending.settle()
                    registry.remove(connection)
                }
            )
        )
        session.logger.debug("session opened", metadata: ["sio.transport": "\(transport)"])
        return .success(connection)
    }
}
