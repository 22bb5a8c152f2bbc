extension EnginePacket {
    /// The packet as one WebSocket frame: binary messages go as they are, everything else as text.
    public func webSocketFrame() -> EngineFrame {
        if case .binaryMessage(let bytes) = self {
            return .binary(bytes)
        }
        return .text(self.pollingText())
    }

    /// The packet as written in a polling payload; for text packets this is also the WebSocket text frame.
    public func pollingText() -> String {
        switch self {
        case .open(let handshake):
            return "0" + handshake.jsonText()
        case .close:
            return "1"
        case .ping(let payload):
            return "2" + payload
        case .pong(let payload):
            return "3" + payload
        case .message(let text):
            return "4" + text
        case .binaryMessage(let bytes):
            // Engine.IO 4 sends binary in polling as base64 behind a `b`, with no type digit.
            return "b" + Base64.encode(bytes)
        case .upgrade:
            return "5"
        case .noop:
            return "6"
        }
    }
}
