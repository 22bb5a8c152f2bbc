extension JSONValue {
    /// Parses one JSON value (RFC 8259), allowing whitespace around it and nothing else.
    public init(parsing text: String, maxDepth: Int = JSONValue.defaultMaxDepth) throws(JSONParseError) {
        self = try text.withUTF8Buffer { (bytes) throws(JSONParseError) -> JSONValue in
            var parser = JSONParser(reader: ByteReader(bytes), maxDepth: maxDepth)
            return try parser.parseDocument()
        }
    }

    /// Parses one JSON value from UTF-8 bytes.
    public init(parsingUTF8 bytes: [UInt8], maxDepth: Int = JSONValue.defaultMaxDepth) throws(JSONParseError) {
        guard let text = String.validatingUTF8(bytes) else { throw .invalidUTF8 }
        try self.init(parsing: text, maxDepth: maxDepth)
    }
}

/// A recursive-descent JSON parser over valid UTF-8; recursion is bounded by `maxDepth`.
struct JSONParser {
    var reader: ByteReader
    let maxDepth: Int

    /// Objects up to this many members check duplicate keys by scanning; larger ones use a set.
    private static let linearKeyCheckLimit = 16

    /// Parses the whole input as one value.
    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        self.skipWhitespace()
        let value = try self.parseValue(depth: 0)
        self.skipWhitespace()
        guard self.reader.isAtEnd else { throw .unexpectedCharacter(offset: self.reader.offset) }
        return value
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let byte = self.reader.peek() else { throw .unexpectedEnd }
        switch byte {
        case UInt8(ascii: "{"): return try self.parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try self.parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try self.parseString())
        case UInt8(ascii: "t"): return try self.parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try self.parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try self.parseLiteral("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try self.parseNumber())
        default: throw .unexpectedCharacter(offset: self.reader.offset)
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= self.maxDepth else { throw .depthLimitExceeded(offset: self.reader.offset) }
        self.reader.advance()
        var items: [JSONValue] = []
        self.skipWhitespace()
        if self.reader.consume(UInt8(ascii: "]")) { return .array(items) }
        while true {
            self.skipWhitespace()
            items.append(try self.parseValue(depth: depth))
            self.skipWhitespace()
            if self.reader.consume(UInt8(ascii: ",")) { continue }
            if self.reader.consume(UInt8(ascii: "]")) { return .array(items) }
            throw self.unexpected()
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= self.maxDepth else { throw .depthLimitExceeded(offset: self.reader.offset) }
        self.reader.advance()
        var members: [(key: String, value: JSONValue)] = []
        var seenKeys: Set<String> = []
        self.skipWhitespace()
        if self.reader.consume(UInt8(ascii: "}")) { return .object(JSONObject(uniqueMembers: members)) }
        while true {
            self.skipWhitespace()
            let keyOffset = self.reader.offset
            guard self.reader.peek() == UInt8(ascii: "\"") else { throw self.unexpected() }
            let key = try self.parseString()
            // Duplicate keys are refused: parsers disagree on which value wins, and the caller may re-decode.
            if members.count < Self.linearKeyCheckLimit {
                if members.contains(where: { $0.key == key }) { throw .duplicateKey(offset: keyOffset) }
            } else {
                if seenKeys.isEmpty { seenKeys = Set(members.map(\.key)) }
                guard seenKeys.insert(key).inserted else { throw .duplicateKey(offset: keyOffset) }
            }
            self.skipWhitespace()
            guard self.reader.consume(UInt8(ascii: ":")) else { throw self.unexpected() }
            self.skipWhitespace()
            members.append((key: key, value: try self.parseValue(depth: depth)))
            self.skipWhitespace()
            if self.reader.consume(UInt8(ascii: ",")) { continue }
            if self.reader.consume(UInt8(ascii: "}")) { return .object(JSONObject(uniqueMembers: members)) }
            throw self.unexpected()
        }
    }

    private mutating func parseLiteral(_ word: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
        for expected in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard let byte = self.reader.peek() else { throw .unexpectedEnd }
            guard byte == expected else { throw .unexpectedCharacter(offset: self.reader.offset) }
            self.reader.advance()
        }
        return value
    }

    /// The error for the byte under the cursor: unexpected, or the end of the input.
    private func unexpected() -> JSONParseError {
        self.reader.isAtEnd ? .unexpectedEnd : .unexpectedCharacter(offset: self.reader.offset)
    }

    private mutating func skipWhitespace() {
        while let byte = self.reader.peek(),
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
        {
            self.reader.advance()
        }
    }
}
