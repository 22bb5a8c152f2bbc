/// Quoted-printable content transfer encoding (RFC 2045 section 6.7) with CRLF line breaks.
enum QuotedPrintable {
    /// Encoded lines are at most 76 characters, the soft line break '=' included.
    static let maximumLineLength = 76

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// Encodes text: every line break becomes CRLF, long lines get soft breaks, non-ASCII bytes become `=XX`.
    static func encode(_ text: String) -> String {
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        return lines.map { self.encode(line: Array($0.utf8)) }.joined(separator: "\r\n")
    }

    private static func encode(line: [UInt8]) -> String {
        var output: [UInt8] = []
        var lineLength = 0
        for (index, byte) in line.enumerated() {
            let token = self.token(for: byte, isFirst: index == 0, isLast: index == line.count - 1)
            // Leave room for the '=' of a soft line break.
            if lineLength + token.count > self.maximumLineLength - 1 {
                output += Array("=\r\n".utf8)
                lineLength = 0
            }
            output += token
            lineLength += token.count
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func token(for byte: UInt8, isFirst: Bool, isLast: Bool) -> [UInt8] {
        let isWhitespace = byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
        let isPlain = (33...126).contains(byte) && byte != UInt8(ascii: "=")
        // Trailing white space is lost in transit; a leading '.' is encoded so no relay mistakes it for the end of DATA.
        if (isWhitespace && !isLast) || (isPlain && !(isFirst && byte == UInt8(ascii: "."))) {
            return [byte]
        }
        return [UInt8(ascii: "="), self.hexDigits[Int(byte >> 4)], self.hexDigits[Int(byte & 0x0F)]]
    }
}
