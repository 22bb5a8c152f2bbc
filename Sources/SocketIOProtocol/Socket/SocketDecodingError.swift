/// Why text received from a client is not a Socket.IO packet this server accepts.
public enum SocketDecodingError: Error, Sendable, Hashable {
    /// The packet has no bytes at all.
    case emptyPacket
    /// The bytes are not valid UTF-8.
    case invalidUTF8
    /// The first byte is not a packet type digit `0`…`6`; carries that byte.
    case invalidPacketType(UInt8)
    /// A BINARY_EVENT or BINARY_ACK whose `<count>-` prefix is missing or malformed.
    case invalidAttachmentCount
    /// A well-formed BINARY_EVENT (5) or BINARY_ACK (6): binary attachments are not supported.
    case binaryPacketsNotSupported
    /// A namespace runs into the payload with no `,` between them.
    case missingNamespaceSeparator
    /// The ack id does not fit in 64 bits.
    case ackIDOverflow
    /// An ack id on a packet type that cannot carry one (only EVENT and ACK can).
    case unexpectedAckID(SocketPacketType)
    /// An ACK without the id of the event it answers.
    case missingAckID
    /// A packet type that requires a payload (EVENT, ACK) has none.
    case missingData(SocketPacketType)
    /// A payload on a packet type that never carries one (DISCONNECT).
    case unexpectedData(SocketPacketType)
    /// The payload is not the JSON shape the type requires (an array for EVENT and ACK, an object for CONNECT).
    case invalidData(SocketPacketType)
}
