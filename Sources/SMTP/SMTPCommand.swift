/// A command the client sends, rendered byte for byte by `line`.
public enum SMTPCommand: Hashable, Sendable {
    /// `EHLO name`.
    case ehlo(String)
    /// `HELO name`, for servers that do not know EHLO.
    case helo(String)
    /// `STARTTLS`.
    case startTLS
    /// `AUTH PLAIN <base64 initial response>`.
    case authPlain(initialResponse: String)
    /// `AUTH LOGIN`.
    case authLogin
    /// A base64 line answering a 334 challenge.
    case authResponse(String)
    /// `MAIL FROM:<address> [parameters]`.
    case mailFrom(String, parameters: [String])
    /// `RCPT TO:<address>`.
    case recipient(String)
    /// `DATA`.
    case data
    /// `RSET`.
    case reset
    /// `QUIT`.
    case quit

    /// The command as sent, ending in CRLF.
    public var line: String {
        switch self {
        case .ehlo(let name): "EHLO \(name)\r\n"
        case .helo(let name): "HELO \(name)\r\n"
        case .startTLS: "STARTTLS\r\n"
        case .authPlain(let initialResponse): "AUTH PLAIN \(initialResponse)\r\n"
        case .authLogin: "AUTH LOGIN\r\n"
        case .authResponse(let response): "\(response)\r\n"
        case .mailFrom(let address, let parameters): (["MAIL FROM:<\(address)>"] + parameters).joined(separator: " ") + "\r\n"
        case .recipient(let address): "RCPT TO:<\(address)>\r\n"
        case .data: "DATA\r\n"
        case .reset: "RSET\r\n"
        case .quit: "QUIT\r\n"
        }
    }

    /// The stage of the dialogue this command belongs to.
    public var stage: SMTPStage {
        switch self {
        case .ehlo, .helo: .hello
        case .startTLS: .startTLS
        case .authPlain, .authLogin, .authResponse: .authentication
        case .mailFrom: .mailFrom
        case .recipient: .recipient
        case .data: .data
        case .reset, .quit: .quit
        }
    }
}

extension SMTPCommand: CustomStringConvertible {
    /// The command without CRLF and with credentials hidden, safe to log.
    public var description: String {
        switch self {
        case .authPlain: "AUTH PLAIN ***"
        case .authResponse: "***"
        default: String(decoding: self.line.utf8.dropLast(2), as: UTF8.self)
        }
    }
}

extension SMTPCredentials {
    /// The AUTH PLAIN initial response: base64 of NUL user NUL password (RFC 4616).
    public var plainInitialResponse: String {
        Base64.encode([0] + Array(self.username.utf8) + [0] + Array(self.password.utf8))
    }
}
