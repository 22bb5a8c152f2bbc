public import Hummingbird
public import SocketIOProtocol

/// What the first HTTP request of an Engine.IO session carried, for the handler to authenticate with.
public struct SocketIOHandshake: Sendable {
    /// The request's `Authorization` and `User-Agent` headers (a session keeps no others).
    public var headers: HTTPFields
    /// The query parameters, percent-decoded (`token`, `EIO`, `transport`, …).
    public var query: [String: String]
    /// The peer's IP address, when the request context knows it.
    public var remoteAddress: String?

    /// Creates a handshake description.
    public init(headers: HTTPFields, query: [String: String], remoteAddress: String?) {
        self.headers = headers
        self.query = query
        self.remoteAddress = remoteAddress
    }
}

/// A request context that knows the client's address (behind a trusted proxy, the one it forwarded): sessions count
/// against their client's limits by it, and handlers see it in ``SocketIOHandshake/remoteAddress``.
public protocol SocketIOClientAddressContext {
    /// The client's IP address.
    var socketIOClientAddress: String? { get }
}

/// Whom a CONNECT admitted: the user, and what the application keeps with the socket.
public struct SocketIOAdmission: Sendable {
    /// The user the socket acts for; emits to a user reach all their sockets.
    public var userID: String
    /// Kept with the socket for the handler (for instance its credentials' expiry): ``SocketIOSocket/admission``.
    public var attachment: (any Sendable)?

    /// Admits `userID`, keeping `attachment` with the socket.
    public init(userID: String, attachment: (any Sendable)? = nil) {
        self.userID = userID
        self.attachment = attachment
    }
}

/// The application side of a Socket.IO server: who may connect, and what their events do.
///
/// The calls for one socket come one at a time and in the order the client sent its packets, `connected` first and
/// `disconnected` last; a slow call delays that socket's later packets (its heartbeat answers included), not others.
public protocol SocketIOHandler: Sendable {
    /// Decides a CONNECT to namespace "/": `auth` is the CONNECT packet's data or nil. Returns whom it admits, or nil to refuse
    /// (the client gets CONNECT_ERROR and the session closes).
    func authenticate(auth: JSONValue?, handshake: SocketIOHandshake) async -> SocketIOAdmission?
    /// A socket was admitted; its `40{"sid"}` reply is already queued, so events emitted here follow it.
    func connected(_ socket: SocketIOSocket) async
    /// A client event; `ack` is non-nil when the client asked for one (call it exactly once).
    func received(event: String, arguments: [JSONValue], from socket: SocketIOSocket, ack: SocketIOAck?) async
    /// The socket is gone, with Socket.IO's reason (`client namespace disconnect`, `transport close`, `ping timeout`, …).
    func disconnected(_ socket: SocketIOSocket, reason: String) async
}
