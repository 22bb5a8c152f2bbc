/// Why an SMTP URL (PARLEY_SMTP_URL) could not be understood; `description` is one human sentence.
public struct SMTPConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The sentence naming what is wrong; it never repeats the password.
    public let message: String

    /// Creates an error with its sentence.
    public init(_ message: String) {
        self.message = message
    }

    /// The sentence naming what is wrong.
    public var description: String { self.message }
}

extension SMTPConfiguration {
    /// Parses `smtp://user:pass@host:587?tls=starttls`, `smtp://host:25`, `smtps://user:pass@host:465` and the like.
    ///
    /// Query parameters: `tls=none|starttls|tls`, `verify=none|full`, `ca=/path/to/ca.pem`, `helo=name`.
    /// User name and password are percent-decoded.
    public init(url: String) throws(SMTPConfigurationError) {
        let text = url.trimmingWhitespace()
        guard let schemeEnd = text.firstRange(of: "://") else {
            throw SMTPConfigurationError("the SMTP URL must start with smtp:// or smtps://")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "smtp" || scheme == "smtps" else {
            throw SMTPConfigurationError("the SMTP URL scheme '\(scheme)' is not supported; use smtp:// or smtps://")
        }
        var rest = text[schemeEnd.upperBound...]

        // The last '@' ends the user info, so a password with an unescaped '/' or '?' still parses.
        var credentials: SMTPCredentials?
        if let at = rest.lastIndex(of: "@") {
            credentials = try Self.parseUserInfo(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }

        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let (host, explicitPort) = try Self.parseHostAndPort(rest[..<authorityEnd])
        var tail = rest[authorityEnd...]
        if tail.hasPrefix("/") { tail = tail.dropFirst() }
        if tail.hasPrefix("#") {
            throw SMTPConfigurationError("the SMTP URL must not have a fragment ('#…')")
        }
        var query = Substring("")
        if let questionMark = tail.firstIndex(of: "?") {
            query = tail[tail.index(after: questionMark)...]
            tail = tail[..<questionMark]
        }
        guard tail.isEmpty else {
            throw SMTPConfigurationError("the SMTP URL must not have a path ('/\(tail)')")
        }

        let options = try Self.parseQuery(query)
        let security = try Self.security(scheme: scheme, tls: options.tls)
        self.init(
            host: host,
            port: explicitPort ?? Self.defaultPort(for: security),
            security: security,
            username: credentials?.username,
            password: credentials?.password,
            heloName: options.helo ?? "localhost",
            tlsVerification: try Self.verification(verify: options.verify, caFile: options.caFile)
        )
    }

    private struct QueryOptions {
        var tls: String?
        var verify: String?
        var caFile: String?
        var helo: String?
    }

    private static func parseUserInfo(_ userInfo: Substring) throws(SMTPConfigurationError) -> SMTPCredentials {
        guard let colon = userInfo.firstIndex(of: ":") else {
            throw SMTPConfigurationError("the SMTP URL names a user but no password (expected user:password@host)")
        }
        let username = try percentDecoded(userInfo[..<colon], what: "user name")
        let password = try percentDecoded(userInfo[userInfo.index(after: colon)...], what: "password")
        guard !username.isEmpty else {
            throw SMTPConfigurationError("the SMTP URL has a password but an empty user name")
        }
        return SMTPCredentials(username: username, password: password)
    }

    private static func parseHostAndPort(_ authority: Substring) throws(SMTPConfigurationError) -> (String, Int?) {
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            // An IPv6 literal: [::1]:25
            guard let close = authority.firstIndex(of: "]") else {
                throw SMTPConfigurationError("the SMTP URL has an IPv6 host without its closing ']'")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let afterHost = authority[authority.index(after: close)...]
            if afterHost.hasPrefix(":") {
                portText = afterHost.dropFirst()
            } else if !afterHost.isEmpty {
                throw SMTPConfigurationError("the SMTP URL has unexpected text '\(afterHost)' after the host")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else {
            throw SMTPConfigurationError("the SMTP URL has no host")
        }
        guard host.allSatisfy({ !$0.isWhitespace && $0 != "%" }) else {
            throw SMTPConfigurationError("the SMTP URL host '\(host)' contains characters a host name cannot have")
        }
        guard let portText else { return (String(host), nil) }
        guard let port = Int(portText), (1...65_535).contains(port), portText.allSatisfy(\.isASCII) else {
            throw SMTPConfigurationError("the SMTP URL port '\(portText)' is not a number between 1 and 65535")
        }
        return (String(host), port)
    }

    private static func parseQuery(_ query: Substring) throws(SMTPConfigurationError) -> QueryOptions {
        var options = QueryOptions()
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key: Substring
            let rawValue: Substring
            if let equals = pair.firstIndex(of: "=") {
                key = pair[..<equals]
                rawValue = pair[pair.index(after: equals)...]
            } else {
                key = pair
                rawValue = ""
            }
            let value = try percentDecoded(rawValue, what: "'\(key)' parameter")
            switch key.lowercased() {
            case "tls": options.tls = value.lowercased()
            case "verify": options.verify = value.lowercased()
            case "ca":
                guard !value.isEmpty else { throw SMTPConfigurationError("the SMTP URL parameter 'ca' needs a PEM file path") }
                options.caFile = value
            case "helo":
                guard !value.isEmpty, value.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isControlCharacter }) else {
                    throw SMTPConfigurationError("the SMTP URL parameter 'helo' must be a host name without spaces")
                }
                options.helo = value
            default:
                throw SMTPConfigurationError("the SMTP URL parameter '\(key)' is unknown; expected tls, verify, ca or helo")
            }
        }
        return options
    }

    private static func security(scheme: String, tls: String?) throws(SMTPConfigurationError) -> Security {
        switch (scheme, tls) {
        case ("smtp", nil), ("smtp", "none"): return .plain
        case ("smtp", "starttls"): return .startTLS
        case ("smtp", "tls"), ("smtps", nil), ("smtps", "tls"): return .implicitTLS
        case ("smtps", "none"), ("smtps", "starttls"):
            throw SMTPConfigurationError("smtps:// always uses implicit TLS, so tls=\(tls ?? "") contradicts it; use smtp:// instead")
        default:
            throw SMTPConfigurationError("the SMTP URL parameter tls='\(tls ?? "")' is not one of none, starttls or tls")
        }
    }

    private static func verification(verify: String?, caFile: String?) throws(SMTPConfigurationError) -> TLSVerification {
        switch (verify, caFile) {
        case (nil, nil), ("full", nil): return .full
        case (nil, .some(let path)), ("full", .some(let path)): return .customCA(pemFile: path)
        case ("none", nil): return .none
        case ("none", .some):
            throw SMTPConfigurationError("the SMTP URL cannot both skip verification (verify=none) and name a CA file (ca=…)")
        default:
            throw SMTPConfigurationError("the SMTP URL parameter verify='\(verify ?? "")' is not one of full or none")
        }
    }

    private static func percentDecoded(_ text: Substring, what: String) throws(SMTPConfigurationError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw SMTPConfigurationError("the SMTP URL \(what) has an invalid percent escape")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw SMTPConfigurationError("the SMTP URL \(what) is not valid UTF-8 once percent-decoded")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing white space.
    func trimmingWhitespace() -> Substring {
        let start = self.firstIndex { !$0.isWhitespace } ?? self.endIndex
        let end = self.lastIndex { !$0.isWhitespace }.map { self.index(after: $0) } ?? start
        return Substring(self[start..<end])
    }
}

extension Character {
    /// True for C0 and C1 control characters, which never belong in a header or command.
    var isControlCharacter: Bool {
        self.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) }
    }
}
