/// The seven Engine.IO packet types, with the digit each is written as.
public enum EnginePacketType: UInt8, Sendable, Hashable, CaseIterable {
    /// The handshake, sent by the server when a session opens.
    case open = 0
    /// Asks the other side to close the transport.
    case close = 1
    /// Heartbeat request (server to client), or `2probe` during an upgrade.
    case ping = 2
    /// Heartbeat answer (client to server), or `3probe` during an upgrade.
    case pong = 3
    /// Carries data: one Socket.IO packet, or binary bytes.
    case message = 4
    /// Completes the polling → WebSocket upgrade (client to server).
    case upgrade = 5
    /// Does nothing; answers a pending long-poll GET during an upgrade.
    case noop = 6
}

/// One Engine.IO protocol 4 packet.
public enum EnginePacket: Sendable, Hashable {
    /// The handshake that opens a session: `0{"sid":…}`.
    case open(EngineHandshake)
    /// `1`: the transport can be closed.
    case close
    /// `2`, or `2probe` with a payload while upgrading; the payload is empty for a heartbeat.
    case ping(payload: String = "")
    /// `3`, or `3probe` with a payload while upgrading; the payload is empty for a heartbeat.
    case pong(payload: String = "")
    /// `4<text>`: a text message, usually one encoded Socket.IO packet.
    case message(String)
    /// A binary message: a binary WebSocket frame, or `b<base64>` in a polling payload.
    case binaryMessage([UInt8])
    /// `5`: the client completes the upgrade to WebSocket.
    case upgrade
    /// `6`: nothing; flushes a pending long-poll GET.
    case noop

    /// The packet's type; binary messages are `message` packets.
    public var type: EnginePacketType {
        switch self {
        case .open: .open
        case .close: .close
        case .ping: .ping
        case .pong: .pong
        case .message, .binaryMessage: .message
        case .upgrade: .upgrade
        case .noop: .noop
        }
    }
}

/// One WebSocket frame's content, as Engine.IO sends one packet per frame.
public enum EngineFrame: Sendable, Hashable {
    /// A text frame (every packet but a binary message).
    case text(String)
    /// A binary frame (a binary message, sent as it is).
    case binary([UInt8])

    /// The frame's payload bytes: the UTF-8 of a text frame, or the binary data.
    public var bytes: [UInt8] {
        switch self {
        case .text(let text): Array(text.utf8)
        case .binary(let bytes): bytes
        }
    }
}
