/// Why a session or socket ended, in the words Socket.IO servers use for `disconnect` reasons.
enum DisconnectReason: String, Sendable {
    /// The client sent DISCONNECT (`41`).
    case clientNamespaceDisconnect = "client namespace disconnect"
    /// The server called `disconnect()`.
    case serverNamespaceDisconnect = "server namespace disconnect"
    /// The client closed the transport (close packet, WebSocket close, connection lost).
    case transportClose = "transport close"
    /// The transport failed: an oversized body, a second long-poll, an outbound queue overflow.
    case transportError = "transport error"
    /// No pong within `pingTimeout`.
    case pingTimeout = "ping timeout"
    /// The client sent something that is not a packet this server accepts.
    case parseError = "parse error"
    /// No socket connected within `connectTimeout`.
    case connectTimeout = "connect timeout"
    /// The server is stopping.
    case serverShuttingDown = "server shutting down"
}
