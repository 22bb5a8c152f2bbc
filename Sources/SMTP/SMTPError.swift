/// Why sending a mail failed; `isTransient` tells whether trying again later may succeed.
public enum SMTPError: Error, Hashable, Sendable {
    /// The TCP connection could not be opened: refused, unreachable, unresolvable or timed out.
    case connectionFailed(String)
    /// The server did not answer within the command timeout.
    case timedOut(SMTPStage)
    /// The server closed the connection (or it broke) before the dialogue ended.
    case connectionClosed(SMTPStage)
    /// The TLS handshake or the certificate check failed, or the TLS setup is unusable.
    case tlsFailed(String)
    /// The server answered a command with an error reply.
    case rejected(SMTPStage, SMTPReply)
    /// The server lacks what the configuration needs, such as STARTTLS or a usable AUTH mechanism.
    case unsupported(String)
    /// The server sent something that is not SMTP.
    case protocolViolation(String)
    /// The message is larger than the server's advertised SIZE limit.
    case messageTooLarge(size: Int, limit: Int)
    /// An address cannot be used in the envelope, e.g. a non-ASCII address to a server without SMTPUTF8.
    case invalidAddress(String)

    /// True when the same message may be delivered by trying again later: network trouble, timeouts and 4xx replies.
    public var isTransient: Bool {
        switch self {
        case .connectionFailed, .timedOut, .connectionClosed, .tlsFailed, .protocolViolation:
            true
        case .rejected(_, let reply):
            !reply.isPermanentNegative
        case .unsupported, .messageTooLarge, .invalidAddress:
            false
        }
    }

    /// The server's reply when the server rejected a command, e.g. `550 5.1.1 user unknown`.
    public var reply: SMTPReply? {
        if case .rejected(_, let reply) = self { return reply }
        return nil
    }
}

extension SMTPError: CustomStringConvertible {
    /// One sentence for logs and for the outbox's last-error column, with the server's reply when there is one.
    public var description: String {
        switch self {
        case .connectionFailed(let reason): "could not connect to the SMTP server: \(reason)"
        case .timedOut(let stage): "the SMTP server did not answer in time (\(stage))"
        case .connectionClosed(let stage): "the SMTP server closed the connection (\(stage))"
        case .tlsFailed(let reason): "TLS with the SMTP server failed: \(reason)"
        case .rejected(let stage, let reply): "the SMTP server rejected \(stage): \(reply)"
        case .unsupported(let reason): "the SMTP server cannot be used as configured: \(reason)"
        case .protocolViolation(let reason): "the SMTP server broke the protocol: \(reason)"
        case .messageTooLarge(let size, let limit): "the message (\(size) bytes) exceeds the SMTP server's limit of \(limit) bytes"
        case .invalidAddress(let reason): "invalid address: \(reason)"
        }
    }
}

/// The step of the SMTP dialogue an error happened in.
public enum SMTPStage: String, Hashable, Sendable, CustomStringConvertible {
    /// Opening the TCP connection (and the implicit TLS handshake).
    case connect
    /// Waiting for the server's 220 greeting.
    case greeting
    /// EHLO or HELO.
    case hello
    /// STARTTLS and the handshake after it.
    case startTLS
    /// AUTH PLAIN or AUTH LOGIN.
    case authentication
    /// MAIL FROM.
    case mailFrom
    /// RCPT TO.
    case recipient
    /// The DATA command.
    case data
    /// The message content and its final dot.
    case message
    /// QUIT.
    case quit

    /// The step as the protocol names it, e.g. `MAIL FROM`.
    public var description: String {
        switch self {
        case .connect: "connect"
        case .greeting: "greeting"
        case .hello: "EHLO"
        case .startTLS: "STARTTLS"
        case .authentication: "AUTH"
        case .mailFrom: "MAIL FROM"
        case .recipient: "RCPT TO"
        case .data: "DATA"
        case .message: "message content"
        case .quit: "QUIT"
        }
    }
}
