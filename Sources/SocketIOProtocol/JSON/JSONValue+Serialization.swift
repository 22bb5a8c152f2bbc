extension JSONValue {
    /// The value as compact JSON text (no whitespace), the way `JSON.stringify` writes it.
    public func jsonText() -> String {
        var output: [UInt8] = []
        self.write(to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends the value's compact JSON to `output`.
    func write(to output: inout [UInt8]) {
        switch self {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let value):
            output.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let value):
            JSONWriter.writeNumber(value, to: &output)
        case .string(let value):
            JSONWriter.writeString(value, to: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                item.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                member.value.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }
}

/// Helpers for building JSON text from pieces that are already encoded.
public enum JSONText {
    /// `string` as a quoted, escaped JSON string literal.
    public static func quoted(_ string: String) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(string.utf8.count + 2)
        JSONWriter.writeString(string, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// A JSON array of already-encoded element texts, written as they are: `[a,b,…]`.
    public static func array(_ encodedElements: [String]) -> String {
        var text = "["
        text.reserveCapacity(2 + encodedElements.reduce(0) { $0 + $1.utf8.count + 1 })
        for (index, element) in encodedElements.enumerated() {
            if index > 0 { text += "," }
            text += element
        }
        return text + "]"
    }
}

/// Writes JSON scalars as UTF-8.
enum JSONWriter {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Writes a quoted string, escaping `"`, `\` and every control character below U+0020.
    static func writeString(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                // Lower-case hex, as JSON.stringify writes it; this also keeps U+001E, the polling
                // separator, out of every JSON text.
                output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                output.append(self.hexDigits[Int(byte >> 4)])
                output.append(self.hexDigits[Int(byte & 0x0F)])
            default:
                output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// Writes a number; integers print without a fraction, and NaN and infinities print `null` as in JavaScript.
    static func writeNumber(_ value: Double, to output: inout [UInt8]) {
        guard value.isFinite else {
            output.append(contentsOf: "null".utf8)
            return
        }
        // Below 2^53 every integral Double is an exact Int64; printing it that way avoids Swift's `25000.0`.
        if value == value.rounded(.towardZero) && abs(value) < 9_007_199_254_740_992 {
            output.append(contentsOf: String(Int64(value)).utf8)
            return
        }
        // Swift prints the shortest text that reads back to the same Double (`0.1`, `1e-07`, `1e+21`),
        // all of it valid JSON.
        output.append(contentsOf: value.description.utf8)
    }
}
