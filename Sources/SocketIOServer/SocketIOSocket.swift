/// One client admitted to namespace "/": the handle the application emits to and disconnects.
public final class SocketIOSocket: Sendable {
    /// The Socket.IO socket id, sent to the client in `40{"sid"}`.
    public let id: String
    /// The user the handler's `authenticate` returned.
    public let userID: String
    /// What the session's first request carried.
    public var handshake: SocketIOHandshake { self.connection.session.handshake }
    let connection: SocketIOConnection

    init(id: String, userID: String, connection: SocketIOConnection) {
        self.id = id
        self.userID = userID
        self.connection = connection
    }

    /// Queues an event for this socket; never blocks. A socket whose queue is full is disconnected instead.
    public func emit(_ event: EncodedEvent) {
        self.connection.session.enqueue(event.packet)
    }

    /// Sends DISCONNECT and closes the session after what is already queued; the handler hears `disconnected`.
    public func disconnect() {
        self.connection.disconnectFromServer()
    }
}
