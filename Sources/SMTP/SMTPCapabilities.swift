/// The extensions a server announces in its EHLO reply.
public struct SMTPCapabilities: Hashable, Sendable {
    /// Every keyword in upper case, mapped to its parameters (`AUTH` → `["PLAIN", "LOGIN"]`).
    public var keywords: [String: [String]]

    /// Creates capabilities from keywords and parameters.
    public init(keywords: [String: [String]] = [:]) {
        self.keywords = keywords
    }

    /// Reads the EHLO reply: the first line greets, each further line is `KEYWORD [PARAM ...]`.
    public init(ehloReply reply: SMTPReply) {
        var keywords: [String: [String]] = [:]
        for line in reply.lines.dropFirst() {
            // Some old servers write `AUTH=LOGIN PLAIN`; treat '=' after the keyword like a space.
            let words = line.split { $0 == " " || $0 == "=" }.map(String.init)
            guard let keyword = words.first?.uppercased() else { continue }
            keywords[keyword, default: []].append(contentsOf: words.dropFirst())
        }
        self.init(keywords: keywords)
    }

    /// True when the server offers STARTTLS.
    public var supportsStartTLS: Bool { self.keywords["STARTTLS"] != nil }

    /// The AUTH mechanisms offered, upper case.
    public var authMechanisms: Set<String> { Set((self.keywords["AUTH"] ?? []).map { $0.uppercased() }) }

    /// True when the server announces SIZE (with or without a limit).
    public var supportsSize: Bool { self.keywords["SIZE"] != nil }

    /// The SIZE limit in bytes, or nil when there is none (absent, or `SIZE 0`).
    public var maximumMessageSize: Int? {
        guard let limit = self.keywords["SIZE"]?.first.flatMap({ Int($0) }), limit > 0 else { return nil }
        return limit
    }

    /// True when the server accepts UTF-8 addresses (RFC 6531).
    public var supportsSMTPUTF8: Bool { self.keywords["SMTPUTF8"] != nil }
}
