import NIOCore
public import SocketIOProtocol

/// A server → client event encoded once as its Engine.IO text `42["name",…]`, written as the same bytes to every recipient.
public struct EncodedEvent: Sendable {
    /// The whole Engine.IO packet; `ByteBuffer` storage is shared, so copies for many sockets cost no bytes.
    let packet: ByteBuffer

    /// Encodes an event from arguments that are already JSON text.
    public init(name: String, encodedArguments: [String]) {
        self.packet = EngineText.message(SocketPacket.event(name, encodedArguments: encodedArguments))
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

    /// `2`: the server's heartbeat.
    static let ping = ByteBuffer(string: "2")
    /// `6`: answers a long-poll GET that must end during an upgrade.
    static let noop = ByteBuffer(string: "6")
    /// `1`: tells a polling client the session is over.
    static let close = ByteBuffer(string: "1")
}
