extension SocketPacket {
    /// Decodes a packet such as `2/admin,13["bar"]` (the payload of an Engine.IO message).
    ///
    /// The data is checked for its outer shape only (first and last byte); parse it with `JSONValue`,
    /// `SocketEvent` or a JSON decoder.
    public init(decoding text: String) throws(SocketDecodingError) {
        self = try text.withUTF8Buffer { (bytes) throws(SocketDecodingError) -> SocketPacket in
            var reader = ByteReader(bytes)
            return try Self.decode(&reader)
        }
    }

    /// Decodes a packet given as UTF-8 bytes.
    public init(decodingUTF8 bytes: [UInt8]) throws(SocketDecodingError) {
        guard let text = String.validatingUTF8(bytes) else { throw .invalidUTF8 }
        try self.init(decoding: text)
    }

    /// Reads `<type>[<attachments>-][<namespace>,][<ack id>][<data>]` and checks it against its type.
    private static func decode(_ reader: inout ByteReader) throws(SocketDecodingError) -> SocketPacket {
        guard let first = reader.peek() else { throw .emptyPacket }
        reader.advance()
        if first == UInt8(ascii: "5") || first == UInt8(ascii: "6") {
            try Self.refuseBinaryPacket(&reader)
        }
        guard first >= UInt8(ascii: "0"), let type = SocketPacketType(rawValue: first - UInt8(ascii: "0")) else {
            throw .invalidPacketType(first)
        }
        let namespace = try Self.readNamespace(&reader)
        let ackID = try Self.readAckID(&reader)
        let data = reader.isAtEnd ? nil : reader.rest(from: reader.offset)
        let packet = SocketPacket(type: type, namespace: namespace, ackID: ackID, data: data)
        try packet.validate()
        return packet
    }

    /// Reads the `<count>-` of a binary packet far enough to give a precise error, then refuses the packet.
    private static func refuseBinaryPacket(_ reader: inout ByteReader) throws(SocketDecodingError) -> Never {
        var digits = 0
        while let byte = reader.peek(), byte.isASCIIDigit {
            digits += 1
            reader.advance()
        }
        guard digits > 0, reader.consume(UInt8(ascii: "-")) else { throw .invalidAttachmentCount }
        throw .binaryPacketsNotSupported
    }

    /// Reads `/name,` when present; `/` otherwise.
    private static func readNamespace(_ reader: inout ByteReader) throws(SocketDecodingError) -> String {
        guard reader.peek() == UInt8(ascii: "/") else { return Self.mainNamespace }
        let start = reader.offset
        while let byte = reader.peek(), byte != UInt8(ascii: ",") {
            // The reference parser would swallow the payload into the namespace; a byte that can only start
            // JSON data means the comma is missing.
            if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "\"") {
                throw .missingNamespaceSeparator
            }
            reader.advance()
        }
        let namespace = reader.string(from: start, to: reader.offset)
        // A namespace that ends the packet needs no comma: the reference test suite sends `40/custom`.
        _ = reader.consume(UInt8(ascii: ","))
        return namespace
    }

    /// Reads the decimal ack id when present, refusing one that overflows 64 bits.
    private static func readAckID(_ reader: inout ByteReader) throws(SocketDecodingError) -> UInt64? {
        guard let first = reader.peek(), first.isASCIIDigit else { return nil }
        var value: UInt64 = 0
        while let byte = reader.peek(), byte.isASCIIDigit {
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, carried) = shifted.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflowed && !carried else { throw .ackIDOverflow }
            value = sum
            reader.advance()
        }
        return value
    }

    /// Checks the ack id and the data's outer shape against what the type allows.
    private func validate() throws(SocketDecodingError) {
        switch self.type {
        case .connect:
            try self.refuseAckID()
            if let data = self.data, !Self.isWrapped(data, "{", "}") { throw .invalidData(self.type) }
        case .disconnect:
            try self.refuseAckID()
            if self.data != nil { throw .unexpectedData(self.type) }
        case .event:
            try self.requireArray()
        case .ack:
            guard self.ackID != nil else { throw .missingAckID }
            try self.requireArray()
        case .connectError:
            try self.refuseAckID()
            // Protocol 5 sends an object; older servers sent a plain string, still read by the reference client.
            if let data = self.data, !Self.isWrapped(data, "{", "}") && !Self.isWrapped(data, "\"", "\"") {
                throw .invalidData(self.type)
            }
        }
    }

    /// Throws when the packet has an ack id its type cannot carry.
    private func refuseAckID() throws(SocketDecodingError) {
        if self.ackID != nil { throw .unexpectedAckID(self.type) }
    }

    /// Throws unless the packet carries a JSON-array-shaped payload.
    private func requireArray() throws(SocketDecodingError) {
        guard let data = self.data else { throw .missingData(self.type) }
        guard Self.isWrapped(data, "[", "]") else { throw .invalidData(self.type) }
    }

    /// Whether `text` is at least two bytes, starting with `open` and ending with `close`.
    private static func isWrapped(_ text: String, _ open: Unicode.Scalar, _ close: Unicode.Scalar) -> Bool {
        let bytes = text.utf8
        return bytes.count >= 2 && bytes.first == UInt8(ascii: open) && bytes.last == UInt8(ascii: close)
    }
}
