public import Logging
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

    /// Creates a server; add its routes to a router with ``addRoutes(to:path:)``.
    public init(configuration: SocketIOConfiguration, handler: any SocketIOHandler, logger: Logger) {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
    }

    /// Queues `event` for every socket of each user; never blocks (a socket that does not keep up is disconnected).
    public func emit(_ event: EncodedEvent, toUsers users: some Sequence<String>) {
        for socket in self.registry.sockets(ofUsers: users) {
            socket.emit(event)
        }
    }

    /// The connected sockets of `userID` on this server.
    public func sockets(ofUser userID: String) -> [SocketIOSocket] {
        self.registry.sockets(ofUser: userID)
    }

    /// The number of connected sockets.
    public var socketCount: Int { self.registry.socketCount }

    /// The number of Engine.IO sessions still held, connected to a namespace or not.
    public var sessionCount: Int { self.registry.sessionCount }

    /// Closes every session (reason `server shutting down`); call it when the application stops.
    public func shutdown() {
        for connection in self.registry.allConnections {
            connection.session.close(.serverShuttingDown)
        }
    }

    /// Opens a session on `transport` and registers it; the Socket.IO layer hears of its close, the registry of its end.
    func openSession(transport: EngineSession.Transport, handshake: SocketIOHandshake) -> SocketIOConnection {
        let session = EngineSession(
            sid: self.configuration.makeSessionID(),
            transport: transport,
            handshake: handshake,
            configuration: self.configuration,
            logger: self.logger
        )
        let connection = SocketIOConnection(session: session, handler: self.handler, registry: self.registry)
        self.registry.add(connection)
        let registry = self.registry
        session.start(
            hooks: EngineSession.Hooks(
                closed: { reason in connection.sessionClosed(reason) },
                finished: { registry.remove(connection) }
            )
        )
        session.logger.debug("session opened", metadata: ["sio.transport": "\(transport)"])
        return connection
    }
}
