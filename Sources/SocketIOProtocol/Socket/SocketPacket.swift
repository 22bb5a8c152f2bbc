/// The Socket.IO packet types this library speaks; BINARY_EVENT (5) and BINARY_ACK (6) are only recognised,
/// to be refused with `SocketDecodingError.binaryPacketsNotSupported`.
public enum SocketPacketType: UInt8, Sendable, Hashable, CaseIterable {
    /// CONNECT: the client asks to join a namespace; the server answers with `{"sid":…}`.
    case connect = 0
    /// DISCONNECT: one side leaves a namespace.
    case disconnect = 1
    /// EVENT: an array whose first item is the event name.
    case event = 2
    /// ACK: the answer to an EVENT that carried an ack id.
    case ack = 3
    /// CONNECT_ERROR: the server refuses a CONNECT.
    case connectError = 4
}

/// One Socket.IO protocol 5 packet, with its data kept as raw JSON text for the caller's JSON decoder.
public struct SocketPacket: Sendable, Hashable {
    /// The packet's type.
    public var type: SocketPacketType
    /// The namespace, `/` for the main one; any other must start with `/` and contain no `,`.
    public var namespace: String
    /// The acknowledgement id; 0 is a real id.
    public var ackID: UInt64?
    /// The payload as JSON text (an object, an array, or a string for CONNECT_ERROR), or nil when absent.
    public var data: String?

    /// Creates a packet; the data is written as it is, so it must already be valid JSON.
    public init(type: SocketPacketType, namespace: String = "/", ackID: UInt64? = nil, data: String? = nil) {
        self.type = type
        self.namespace = namespace
        self.ackID = ackID
        self.data = data
    }

    /// The namespace everyone joins unless they name another.
    public static let mainNamespace = "/"
}
