extension EnginePacket {
    /// Decodes a WebSocket text frame such as `4hello` or `2probe`.
    public init(text: String) throws(EngineDecodingError) {
        self = try Self.decode(Substring(text), allowingBase64: false)
    }

    /// Decodes a WebSocket text frame given as its UTF-8 bytes.
    public init(textUTF8 bytes: [UInt8]) throws(EngineDecodingError) {
        guard let text = String.validatingUTF8(bytes) else { throw .invalidUTF8 }
        try self.init(text: text)
    }

    /// Decodes a WebSocket binary frame: in Engine.IO 4 it is always a binary message, sent as it is.
    public init(binary bytes: [UInt8]) {
        self = .binaryMessage(bytes)
    }

    /// Decodes one WebSocket frame of either kind.
    public init(frame: EngineFrame) throws(EngineDecodingError) {
        switch frame {
        case .text(let text): try self.init(text: text)
        case .binary(let bytes): self.init(binary: bytes)
        }
    }

    /// Decodes one packet of a polling payload, where `b<base64>` is a binary message.
    init(pollingText: Substring) throws(EngineDecodingError) {
        self = try Self.decode(pollingText, allowingBase64: true)
    }

    /// Decodes one packet's text; `allowingBase64` accepts the polling-only `b` prefix.
    private static func decode(_ text: Substring, allowingBase64: Bool) throws(EngineDecodingError) -> EnginePacket {
        guard let first = text.utf8.first else { throw .emptyPacket }
        // Cut after the first byte in the UTF-8 view: cutting after the first Character would also swallow a
        // combining mark that follows the type digit.
        let payload = Substring(text.utf8.dropFirst())
        if allowingBase64 && first == UInt8(ascii: "b") {
            guard let bytes = Base64.decode(payload.utf8) else { throw .invalidBase64 }
            return .binaryMessage(bytes)
        }
        guard first >= UInt8(ascii: "0"), let type = EnginePacketType(rawValue: first - UInt8(ascii: "0")) else {
            throw .invalidPacketType(first)
        }
        switch type {
        case .open:
            return .open(try EngineHandshake(json: String(payload)))
        case .ping:
            return .ping(payload: String(payload))
        case .pong:
            return .pong(payload: String(payload))
        case .message:
            return .message(String(payload))
        case .close:
            guard payload.isEmpty else { throw .unexpectedPayload(type) }
            return .close
        case .upgrade:
            guard payload.isEmpty else { throw .unexpectedPayload(type) }
            return .upgrade
        case .noop:
            guard payload.isEmpty else { throw .unexpectedPayload(type) }
            return .noop
        }
    }
}
