/// Why bytes received from a client are not a valid Engine.IO packet or payload.
public enum EngineDecodingError: Error, Sendable, Hashable {
    /// A packet has no bytes at all (an empty frame, an empty body, or two separators in a row).
    case emptyPacket
    /// The first byte is not a packet type digit `0`…`6` (nor `b` in a polling payload); carries that byte.
    case invalidPacketType(UInt8)
    /// A text frame or polling body is not valid UTF-8.
    case invalidUTF8
    /// A `b` packet in a polling payload is not canonical padded base64.
    case invalidBase64
    /// A `close`, `upgrade` or `noop` packet carries a payload, which the protocol never gives them.
    case unexpectedPayload(EnginePacketType)
    /// An `open` packet's payload is not the handshake JSON object.
    case invalidHandshake
}
