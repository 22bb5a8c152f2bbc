import NIOCore
public import SocketIOProtocol

/// A server → client event encoded once as its Engine.IO text `42["name",…]`, written as the same bytes to every recipient.
///
/// It is built once as a whole WebSocket text frame (a server's frames are unmasked, so the header is the same for every
/// recipient): WebSockets write `frame` as it is, polling sends `packet`, a slice of the same storage.
public struct EncodedEvent: Sendable {
    /// The WebSocket text frame: header, then the packet.
    let frame: ByteBuffer
    /// The whole Engine.IO packet; `ByteBuffer` storage is shared, so copies for many sockets cost no bytes.
    let packet: ByteBuffer

    /// Encodes an event from arguments that are already JSON text.
    public init(name: String, encodedArguments: [String]) {
        (self.frame, self.packet) = EngineText.textFrame("4" + SocketPacket.event(name, encodedArguments: encodedArguments).encoded())
    }

    /// Encodes an event from JSON values.
    public init(name: String, arguments: [JSONValue]) {
        self.init(name: name, encodedArguments: arguments.map { $0.jsonText() })
    }

    /// The packet as written on the wire (for logs and tests).
    public var text: String { String(buffer: self.packet) }
}

/// The answer to a client event that asked for an acknowledgement.
public struct SocketIOAck: Sendable {
    /// The ack id of the client's EVENT; 0 is a real id.
    public let id: UInt64
    let session: EngineSession

    /// Sends `43<id>[…]` with arguments that are already JSON text.
    public func callAsFunction(encodedArguments: [String]) {
        self.session.enqueue(EngineText.message(SocketPacket.ack(self.id, encodedArguments: encodedArguments)))
    }

    /// Sends `43<id>[…]` with JSON values.
    public func callAsFunction(_ arguments: JSONValue...) {
        self(encodedArguments: arguments.map { $0.jsonText() })
    }
}

/// Engine.IO packets as the bytes the transports write.
enum EngineText {
    /// `4` followed by the Socket.IO packet.
    static func message(_ packet: SocketPacket) -> ByteBuffer {
        ByteBuffer(string: "4" + packet.encoded())
    }

    /// A packet without payload, or with a short one (`2`, `6`, `1`, `3probe`).
    static func packet(_ packet: EnginePacket) -> ByteBuffer {
        ByteBuffer(string: packet.pollingText())
    }

    /// `text` as one unmasked, final WebSocket text frame (RFC 6455 §5.2: `0x81`, then the length in 7, 7+16 or 7+64
    /// bits), and the payload: a slice of the frame's storage.
    static func textFrame(_ text: String) -> (frame: ByteBuffer, payload: ByteBuffer) {
        let maxHeader = 10
        var buffer = ByteBuffer()
        buffer.reserveCapacity(maxHeader + text.utf8.count)
        buffer.moveWriterIndex(forwardBy: maxHeader)
        let length = buffer.writeString(text)
        let headerLength = length < 126 ? 2 : length <= Int(UInt16.max) ? 4 : 10
        let start = maxHeader - headerLength
        buffer.setInteger(UInt8(0x81), at: start)
        switch headerLength {
        case 2:
            buffer.setInteger(UInt8(length), at: start + 1)
        case 4:
            buffer.setInteger(UInt8(126), at: start + 1)
            buffer.setInteger(UInt16(length), at: start + 2)
        default:
            buffer.setInteger(UInt8(127), at: start + 1)
            buffer.setInteger(UInt64(length), at: start + 2)
        }
        buffer.moveReaderIndex(to: start)
        let payload = buffer.getSlice(at: maxHeader, length: length)!
        return (buffer, payload)
    }

    /// `2`: the server's heartbeat.
    static let ping = ByteBuffer(string: "2")
    /// `6`: answers a long-poll GET that must end during an upgrade.
    static let noop = ByteBuffer(string: "6")
    /// `1`: tells a polling client the session is over.
    static let close = ByteBuffer(string: "1")
}
