/// The HTTP long-polling payload: packets joined by the record separator 0x1E.
public enum EnginePayload {
    /// The record separator that joins packets in a polling body.
    public static let separator: UInt8 = 0x1E

    /// One polling body for `packets`, in order; binary messages are written `b<base64>`.
    ///
    /// Text packets must not contain U+001E: the protocol has no escape for it. Socket.IO packets never do,
    /// because JSON writes that control character as `\u001e`.
    public static func encode(_ packets: [EnginePacket]) -> String {
        var body = ""
        for (index, packet) in packets.enumerated() {
            if index > 0 {
                body.unicodeScalars.append(Unicode.Scalar(Self.separator))
            }
            body += packet.pollingText()
        }
        return body
    }

    /// The packets of a polling body such as `4hello\u{1E}2\u{1E}bAQIDBA==`.
    public static func decode(_ body: String) throws(EngineDecodingError) -> [EnginePacket] {
        // Splitting the UTF-8 view keeps every piece on a scalar boundary, because 0x1E is a whole scalar.
        let records = body.utf8.split(separator: Self.separator, omittingEmptySubsequences: false)
        var packets: [EnginePacket] = []
        packets.reserveCapacity(records.count)
        for record in records {
            packets.append(try EnginePacket(pollingText: Substring(record)))
        }
        return packets
    }

    /// The packets of a polling body given as its UTF-8 bytes (a POST body).
    public static func decode(utf8 body: [UInt8]) throws(EngineDecodingError) -> [EnginePacket] {
        guard let text = String.validatingUTF8(body) else { throw .invalidUTF8 }
        return try self.decode(text)
    }
}
