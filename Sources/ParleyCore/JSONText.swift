/// Small helpers for writing JSON text by hand where a Codable round trip is not worth it.
public enum JSONText {
    /// Returns `string` as a quoted JSON string literal.
    public static func quote(_ string: String) -> String {
        var out = ""
        Self.appendQuoted(string, to: &out)
        return out
    }

    /// Appends `string` to `out` as a quoted JSON string literal.
    public static func appendQuoted(_ string: String, to out: inout String) {
        // Most strings (ids, names, timestamps) need no escape: appended as they are, without a walk over their scalars.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == 0xE2 }) {
            out.append("\"")
            out.append(string)
            out.append("\"")
            return
        }
        out.reserveCapacity(out.utf8.count + string.utf8.count + 2)
        out.append("\"")
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }
}

/// A JSON object written by hand, member by member, with what `JSONEncoder` writes of a synthesized `Encodable`: an
/// absent optional left out, the members in the order they are added. For the few shapes encoded on every message's
/// way (see `Message.jsonText`), where Foundation's encoder cost about a tenth of the server's CPU. Everything is
/// appended to one string: no member makes a string of its own.
public struct JSONObjectText {
    private var text: String

    /// An object expected to take about `capacity` bytes.
    public init(capacity: Int = 256) {
        self.text = "{"
        self.text.reserveCapacity(capacity)
    }

    /// Adds `"key":`; keys are member names, with nothing to escape.
    private mutating func key(_ key: String) {
        self.text.append(self.text.utf8.count == 1 ? "\"" : ",\"")
        self.text.append(key)
        self.text.append("\":")
    }

    /// A string member, left out when `value` is nil.
    public mutating func add(_ key: String, _ value: String?) {
        guard let value else { return }
        self.key(key)
        JSONText.appendQuoted(value, to: &self.text)
    }

    /// An integer member, left out when `value` is nil.
    public mutating func add(_ key: String, _ value: (some BinaryInteger)?) {
        guard let value else { return }
        self.key(key)
        self.text.append(String(value))
    }

    /// An array of strings, left out when `values` is nil.
    public mutating func add(_ key: String, _ values: [String]?) {
        guard let values else { return }
        self.key(key)
        self.text.append("[")
        for (index, value) in values.enumerated() {
            if index > 0 { self.text.append(",") }
            JSONText.appendQuoted(value, to: &self.text)
        }
        self.text.append("]")
    }

    /// A member whose value is JSON text already, left out when `json` is nil.
    public mutating func add(_ key: String, json: String?) {
        guard let json else { return }
        self.key(key)
        self.text.append(json)
    }

    /// The object's text.
    public var finished: String {
        var text = self.text
        text.append("}")
        return text
    }
}
