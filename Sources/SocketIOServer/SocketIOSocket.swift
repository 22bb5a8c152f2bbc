import Synchronization

/// One client admitted to namespace "/": the handle the application emits to and disconnects.
public final class SocketIOSocket: Sendable {
    /// The Socket.IO socket id, sent to the client in `40{"sid"}`.
    public let id: String
    /// Whom the handler's `authenticate` admitted.
    public let admission: SocketIOAdmission
    /// The user the socket acts for.
    public var userID: String { self.admission.userID }
    /// What the session's first request carried.
    public var handshake: SocketIOHandshake { self.connection.session.handshake }
    let connection: SocketIOConnection
    /// Cleared when the socket leaves, so a handle kept by the application cannot reach a later socket of the same
    /// session (a client may send `41` and CONNECT again on one Engine.IO session).
    private let active = Atomic<Bool>(true)

    init(id: String, admission: SocketIOAdmission, connection: SocketIOConnection) {
        self.id = id
        self.admission = admission
        self.connection = connection
    }

    /// Whether the socket is still connected.
    public var isConnected: Bool { self.active.load(ordering: .relaxed) }

    /// Queues an event for this socket; never blocks. A socket whose queue is full is disconnected instead.
    public func emit(_ event: EncodedEvent) {
        guard self.isConnected else { return }
        self.connection.session.enqueue(event)
    }

    /// Sends DISCONNECT and closes the session after what is already queued; the handler hears `disconnected`.
    public func disconnect() {
        guard self.isConnected else { return }
        self.connection.disconnectFromServer()
    }

    /// Marks the socket gone; emits to it are dropped from now on.
    func markDisconnected() {
        self.active.store(false, ordering: .relaxed)
    }
}
