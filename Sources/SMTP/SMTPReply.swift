/// One reply from an SMTP server: a three-digit code and one or more lines of text.
public struct SMTPReply: Hashable, Sendable {
    /// The three-digit reply code, 200 to 599.
    public var code: Int
    /// The text of each line after the code and its separator, in order.
    public var lines: [String]

    /// Creates a reply.
    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// Creates a one-line reply.
    public init(code: Int, _ text: String) {
        self.init(code: code, lines: [text])
    }

    /// 2xx: the command succeeded.
    public var isPositiveCompletion: Bool { (200..<300).contains(self.code) }
    /// 3xx: the server waits for more (354 after DATA, 334 during AUTH).
    public var isPositiveIntermediate: Bool { (300..<400).contains(self.code) }
    /// 4xx: a temporary failure; the same command may succeed later.
    public var isTransientNegative: Bool { (400..<500).contains(self.code) }
    /// 5xx: a permanent failure.
    public var isPermanentNegative: Bool { (500..<600).contains(self.code) }

    /// All lines of text joined by a space, as one would store or log it.
    public var text: String { self.lines.joined(separator: " ") }
}

extension SMTPReply: CustomStringConvertible {
    /// The code and text on one line, e.g. `451 4.3.0 try again later`.
    public var description: String {
        self.text.isEmpty ? String(self.code) : "\(self.code) \(self.text)"
    }
}

/// Assembles replies from lines, joining multi-line replies (`250-first`, `250-second`, `250 last`).
public struct SMTPReplyParser: Sendable {
    /// RFC 5321 allows 512 octets per reply line; real servers sometimes exceed it, so allow more.
    public static let maximumLineLength = 4096

    private var pendingCode: Int?
    private var pendingLines: [String] = []

    /// Creates a parser with no partial reply.
    public init() {}

    /// True while a multi-line reply has started but not ended.
    public var isInsideReply: Bool { self.pendingCode != nil }

    /// Feeds one line (without its CRLF); returns the reply it completes, or nil when more lines follow.
    public mutating func parse(line: String) throws(SMTPError) -> SMTPReply? {
        let bytes = Array(line.utf8)
        guard bytes.count <= Self.maximumLineLength else {
            throw SMTPError.protocolViolation("a reply line is longer than \(Self.maximumLineLength) bytes")
        }
        guard bytes.count >= 3, let code = Self.code(of: bytes) else {
            throw SMTPError.protocolViolation("'\(line.prefix(80))' is not an SMTP reply line")
        }
        let isLast: Bool
        switch bytes.count > 3 ? bytes[3] : UInt8(ascii: " ") {
        case UInt8(ascii: " "): isLast = true
        case UInt8(ascii: "-"): isLast = false
        default: throw SMTPError.protocolViolation("'\(line.prefix(80))' is not an SMTP reply line")
        }
        if let pendingCode = self.pendingCode, pendingCode != code {
            throw SMTPError.protocolViolation("a multi-line reply switched from code \(pendingCode) to \(code)")
        }
        let text = bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : ""
        self.pendingLines.append(text)
        guard isLast else {
            self.pendingCode = code
            return nil
        }
        let reply = SMTPReply(code: code, lines: self.pendingLines)
        self.pendingCode = nil
        self.pendingLines = []
        return reply
    }

    private static func code(of bytes: [UInt8]) -> Int? {
        let digits = bytes[0..<3]
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        let code = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        // RFC 5321 section 4.2: the first digit is 2 to 5; anything else is noise, not a reply.
        return (200..<600).contains(code) ? code : nil
    }
}
