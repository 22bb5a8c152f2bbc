public import Hummingbird
public import SocketIOProtocol

/// What the first HTTP request of an Engine.IO session carried, for the handler to authenticate with.
public struct SocketIOHandshake: Sendable {
    /// The request's headers (`Authorization`, `Cookie`, `User-Agent`, …).
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

/// The application side of a Socket.IO server: who may connect, and what their events do.
///
/// The calls for one socket come one at a time and in the order the client sent its packets, `connected` first and
/// `disconnected` last; a slow call delays that socket's later packets (its heartbeat answers included), not others.
public protocol SocketIOHandler: Sendable {
    /// Decides a CONNECT to namespace "/": `auth` is the CONNECT packet's data or nil. Returns the user id, or nil to refuse.
    func authenticate(auth: JSONValue?, handshake: SocketIOHandshake) async -> String?
    /// A socket was admitted; its `40{"sid"}` reply is already queued, so events emitted here follow it.
    func connected(_ socket: SocketIOSocket) async
    /// A client event; `ack` is non-nil when the client asked for one (call it exactly once).
    func received(event: String, arguments: [JSONValue], from socket: SocketIOSocket, ack: SocketIOAck?) async
    /// The socket is gone, with Socket.IO's reason (`client namespace disconnect`, `transport close`, `ping timeout`, …).
    func disconnected(_ socket: SocketIOSocket, reason: String) async
}
