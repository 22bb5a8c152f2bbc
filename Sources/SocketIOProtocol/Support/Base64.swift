/// Standard base64 (RFC 4648 §4, with padding), the form Engine.IO uses for binary packets in polling payloads.
enum Base64 {
    /// The 64 symbols in value order.
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Symbol value for each byte, 0xFF for bytes outside the alphabet.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, symbol) in Base64.alphabet.enumerated() {
            table[Int(symbol)] = UInt8(value)
        }
        return table
    }()

    private static let padding = UInt8(ascii: "=")

    /// `bytes` as padded base64 text.
    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(self.symbol(chunk >> 18))
            output.append(self.symbol(chunk >> 12))
            output.append(self.symbol(chunk >> 6))
            output.append(self.symbol(chunk))
            index += 3
        }
        switch bytes.count - index {
        case 1:
            let chunk = UInt32(bytes[index]) << 16
            output.append(self.symbol(chunk >> 18))
            output.append(self.symbol(chunk >> 12))
            output.append(self.padding)
            output.append(self.padding)
        case 2:
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            output.append(self.symbol(chunk >> 18))
            output.append(self.symbol(chunk >> 12))
            output.append(self.symbol(chunk >> 6))
            output.append(self.padding)
        default:
            break
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The bytes of padded base64 `text`, or nil when it is not canonical base64.
    ///
    /// Strict on purpose: the length must be a multiple of four, `=` may appear only as the final one or two
    /// symbols, and the bits a padded group leaves unused must be zero, so every accepted text re-encodes to itself.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        let symbols = Array(text)
        guard symbols.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(symbols.count / 4 * 3)
        var index = 0
        while index < symbols.count {
            let isLastGroup = index + 4 == symbols.count
            let paddingCount = isLastGroup ? self.trailingPadding(symbols[index..<index + 4]) : 0
            var chunk: UInt32 = 0
            for offset in 0..<4 {
                let symbol = symbols[index + offset]
                if offset >= 4 - paddingCount {
                    chunk <<= 6
                    continue
                }
                let value = self.values[Int(symbol)]
                guard value != 0xFF else { return nil }
                chunk = chunk << 6 | UInt32(value)
            }
            switch paddingCount {
            case 0:
                output.append(UInt8(truncatingIfNeeded: chunk >> 16))
                output.append(UInt8(truncatingIfNeeded: chunk >> 8))
                output.append(UInt8(truncatingIfNeeded: chunk))
            case 1:
                guard chunk & 0xFF == 0 else { return nil }
                output.append(UInt8(truncatingIfNeeded: chunk >> 16))
                output.append(UInt8(truncatingIfNeeded: chunk >> 8))
            case 2:
                guard chunk & 0xFFFF == 0 else { return nil }
                output.append(UInt8(truncatingIfNeeded: chunk >> 16))
            default:
                return nil
            }
            index += 4
        }
        return output
    }

    /// The symbol for the low six bits of `value`.
    private static func symbol(_ value: UInt32) -> UInt8 {
        self.alphabet[Int(value & 0x3F)]
    }

    /// How many `=` end the group (0, 1, 2), or 3 for a group that is all or mostly padding (always invalid).
    private static func trailingPadding(_ group: ArraySlice<UInt8>) -> Int {
        let base = group.startIndex
        if group[base + 3] != self.padding { return 0 }
        if group[base + 2] != self.padding { return 1 }
        return group[base + 1] == self.padding ? 3 : 2
    }
}
