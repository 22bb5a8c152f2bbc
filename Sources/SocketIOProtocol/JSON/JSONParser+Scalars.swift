extension JSONParser {
    /// Parses a string starting at its opening quote, decoding escapes.
    mutating func parseString() throws(JSONParseError) -> String {
        self.reader.advance()
        let start = self.reader.offset
        // Most strings have no escape: they are cut straight out of the input, and a buffer is made only
        // when the first backslash shows up.
        var decoded: [UInt8]?
        var segmentStart = start
        while true {
            guard let byte = self.reader.peek() else { throw .unexpectedEnd }
            switch byte {
            case UInt8(ascii: "\""):
                let end = self.reader.offset
                self.reader.advance()
                guard var decoded else { return self.reader.string(from: start, to: end) }
                decoded.append(contentsOf: UnsafeBufferPointer(rebasing: self.reader.bytes[segmentStart..<end]))
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                var buffer = decoded ?? []
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: self.reader.bytes[segmentStart..<self.reader.offset]))
                try self.parseEscape(into: &buffer)
                decoded = buffer
                segmentStart = self.reader.offset
            case 0x00..<0x20:
                throw .controlCharacterInString(offset: self.reader.offset)
            default:
                // Bytes of multi-byte characters pass through: the input is already valid UTF-8.
                self.reader.advance()
            }
        }
    }

    /// Decodes one escape sequence starting at its backslash and appends its UTF-8.
    private mutating func parseEscape(into buffer: inout [UInt8]) throws(JSONParseError) {
        let escapeOffset = self.reader.offset
        self.reader.advance()
        guard let byte = self.reader.peek() else { throw .unexpectedEnd }
        self.reader.advance()
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(byte)
        case UInt8(ascii: "b"): buffer.append(0x08)
        case UInt8(ascii: "f"): buffer.append(0x0C)
        case UInt8(ascii: "n"): buffer.append(0x0A)
        case UInt8(ascii: "r"): buffer.append(0x0D)
        case UInt8(ascii: "t"): buffer.append(0x09)
        case UInt8(ascii: "u"): try self.parseUnicodeEscape(startingAt: escapeOffset, into: &buffer)
        default: throw .invalidEscape(offset: escapeOffset)
        }
    }

    /// Decodes `XXXX` after `\u`, joining a surrogate pair `\uD83D\uDE00` into one scalar.
    private mutating func parseUnicodeEscape(startingAt escapeOffset: Int, into buffer: inout [UInt8]) throws(JSONParseError) {
        let unit = try self.parseHexQuad(escapeOffset: escapeOffset)
        var scalarValue = UInt32(unit)
        if UTF16.isTrailSurrogate(unit) {
            throw .invalidUnicodeEscape(offset: escapeOffset)
        }
        if UTF16.isLeadSurrogate(unit) {
            // A Swift String cannot hold a lone surrogate, so the trail must follow at once.
            guard self.reader.consume(UInt8(ascii: "\\")), self.reader.consume(UInt8(ascii: "u")) else {
                throw .invalidUnicodeEscape(offset: escapeOffset)
            }
            let trail = try self.parseHexQuad(escapeOffset: escapeOffset)
            guard UTF16.isTrailSurrogate(trail) else { throw .invalidUnicodeEscape(offset: escapeOffset) }
            scalarValue = 0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(trail - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(scalarValue) else { throw .invalidUnicodeEscape(offset: escapeOffset) }
        UTF8.encode(scalar) { buffer.append($0) }
    }

    /// Reads four hex digits.
    private mutating func parseHexQuad(escapeOffset: Int) throws(JSONParseError) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let byte = self.reader.peek() else { throw .unexpectedEnd }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .invalidUnicodeEscape(offset: escapeOffset)
            }
            value = value << 4 | UInt16(digit)
            self.reader.advance()
        }
        return value
    }

    /// Parses a number per JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = self.reader.offset
        _ = self.reader.consume(UInt8(ascii: "-"))
        guard let firstDigit = self.reader.peek(), firstDigit.isASCIIDigit else { throw .invalidNumber(offset: start) }
        self.reader.advance()
        var integerDigits = 1
        if firstDigit != UInt8(ascii: "0") {
            integerDigits += self.skipDigits()
        } else if let next = self.reader.peek(), next.isASCIIDigit {
            throw .invalidNumber(offset: start)
        }
        var isInteger = true
        if self.reader.consume(UInt8(ascii: ".")) {
            isInteger = false
            guard self.skipDigits() > 0 else { throw .invalidNumber(offset: start) }
        }
        if self.reader.consume(UInt8(ascii: "e")) || self.reader.consume(UInt8(ascii: "E")) {
            isInteger = false
            if !self.reader.consume(UInt8(ascii: "+")) { _ = self.reader.consume(UInt8(ascii: "-")) }
            guard self.skipDigits() > 0 else { throw .invalidNumber(offset: start) }
        }
        // Up to 15 digits an integer is exact in a Double, so the common case skips the string conversion.
        if isInteger && integerDigits <= 15 {
            return self.smallInteger(from: start)
        }
        guard let value = Double(self.reader.string(from: start, to: self.reader.offset)) else {
            throw .invalidNumber(offset: start)
        }
        guard value.isFinite else { throw .numberOutOfRange(offset: start) }
        return value
    }

    /// Skips ASCII digits and returns how many.
    private mutating func skipDigits() -> Int {
        var count = 0
        while let byte = self.reader.peek(), byte.isASCIIDigit {
            count += 1
            self.reader.advance()
        }
        return count
    }

    /// The value of the already-validated integer of at most 15 digits between `start` and the cursor.
    private func smallInteger(from start: Int) -> Double {
        var offset = start
        var isNegative = false
        if self.reader.bytes[offset] == UInt8(ascii: "-") {
            isNegative = true
            offset += 1
        }
        var value: Int64 = 0
        while offset < self.reader.offset {
            value = value * 10 + Int64(self.reader.bytes[offset] - UInt8(ascii: "0"))
            offset += 1
        }
        // `-0` stays negative zero, as JavaScript reads it.
        return isNegative ? -Double(value) : Double(value)
    }
}
