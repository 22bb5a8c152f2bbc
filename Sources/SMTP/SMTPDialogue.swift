/// The addresses given to the server in MAIL FROM and RCPT TO, which may differ from the headers.
public struct SMTPEnvelope: Hashable, Sendable {
    /// The reverse path (MAIL FROM), a bare address.
    public var sender: String
    /// The forward paths (RCPT TO), bare addresses.
    public var recipients: [String]

    /// Creates an envelope.
    public init(sender: String, recipients: [String]) {
        self.sender = sender
        self.recipients = recipients
    }
}

/// What the transport must do after a reply.
public enum SMTPAction: Hashable, Sendable {
    /// Write this command, then wait for the next reply.
    case send(SMTPCommand)
    /// Write these bytes (the dot-stuffed content with its final `.` line), then wait for the next reply.
    case sendContent([UInt8])
    /// Put TLS on the connection, then call `SMTPDialogue.tlsEstablished()`.
    case startTLS
    /// The dialogue is over: close the connection.
    case close
}

/// The client side of one SMTP session that delivers one message, free of any networking.
///
/// The transport reads a reply, hands it to `receive(_:)` and does what the returned action says,
/// until the action is `.close`. Every unexpected reply throws an `SMTPError` carrying that reply.
public struct SMTPDialogue: Sendable {
    private enum State: Hashable, Sendable {
        case greeting
        case ehlo(secured: Bool)
        case helo
        case startTLS
        case awaitingTLS
        case authPlain
        case authLoginUsername
        case authLoginPassword
        case authResult
        case mailFrom
        case recipient(Int)
        case data
        case content
        case quit
        case closed
    }

    private let heloName: String
    private let requiresStartTLS: Bool
    private let credentials: SMTPCredentials?
    private let envelope: SMTPEnvelope
    private let content: [UInt8]
    private var state: State = .greeting
    private var capabilities = SMTPCapabilities()

    /// True once the server accepted the message content (250 after the final dot); a later failure loses nothing.
    public private(set) var isMessageAccepted = false

    /// Starts a dialogue that waits for the server's greeting; `content` is the RFC 5322 message, not yet dot-stuffed.
    public init(heloName: String, requiresStartTLS: Bool, credentials: SMTPCredentials?, envelope: SMTPEnvelope, content: [UInt8]) {
        self.heloName = heloName
        self.requiresStartTLS = requiresStartTLS
        self.credentials = credentials
        self.envelope = envelope
        self.content = content
    }

    /// The stage the dialogue is in, used to say where an error happened.
    public var stage: SMTPStage {
        switch self.state {
        case .greeting: .greeting
        case .ehlo, .helo: .hello
        case .startTLS, .awaitingTLS: .startTLS
        case .authPlain, .authLoginUsername, .authLoginPassword, .authResult: .authentication
        case .mailFrom: .mailFrom
        case .recipient: .recipient
        case .data: .data
        case .content: .message
        case .quit, .closed: .quit
        }
    }

    /// The extensions the server announced in its last EHLO reply.
    public var serverCapabilities: SMTPCapabilities { self.capabilities }

    /// Takes the next reply and says what to do; throws when the reply is not the one that lets the dialogue go on.
    public mutating func receive(_ reply: SMTPReply) throws(SMTPError) -> SMTPAction {
        switch self.state {
        case .greeting:
            try self.expect(reply, code: 220)
            return self.sendHello(secured: false)

        case .ehlo(let secured):
            if reply.isPermanentNegative, !secured, !self.requiresStartTLS, self.credentials == nil {
                // An old server without ESMTP: plain HELO is enough for an unauthenticated, unencrypted send.
                self.state = .helo
                return .send(.helo(self.heloName))
            }
            try self.expect(reply, code: 250)
            self.capabilities = SMTPCapabilities(ehloReply: reply)
            if self.requiresStartTLS, !secured {
                guard self.capabilities.supportsStartTLS else {
                    throw SMTPError.unsupported("STARTTLS is configured but the server does not offer it")
                }
                self.state = .startTLS
                return .send(.startTLS)
            }
            return try self.authenticateOrSendMailFrom()

        case .helo:
            try self.expect(reply, code: 250)
            self.capabilities = SMTPCapabilities()
            return try self.sendMailFrom()

        case .startTLS:
            try self.expect(reply, code: 220)
            self.state = .awaitingTLS
            return .startTLS

        case .awaitingTLS, .closed:
            throw SMTPError.protocolViolation("the server sent '\(reply)' when no reply was due")

        case .authPlain:
            if reply.code == 334 {
                // The server ignored the initial response and asks for it again.
                self.state = .authResult
                return .send(.authResponse(self.requiredCredentials.plainInitialResponse))
            }
            try self.expect(reply, code: 235)
            return try self.sendMailFrom()

        case .authLoginUsername:
            try self.expect(reply, code: 334)
            self.state = .authLoginPassword
            return .send(.authResponse(Base64.encode(self.requiredCredentials.username)))

        case .authLoginPassword:
            try self.expect(reply, code: 334)
            self.state = .authResult
            return .send(.authResponse(Base64.encode(self.requiredCredentials.password)))

        case .authResult:
            try self.expect(reply, code: 235)
            return try self.sendMailFrom()

        case .mailFrom:
            try self.expect(reply, code: 250)
            return self.sendRecipient(at: 0)

        case .recipient(let index):
            // 251: "user not local; will forward" is a success too.
            guard reply.code == 250 || reply.code == 251 else { throw SMTPError.rejected(self.stage, reply) }
            return self.sendRecipient(at: index + 1)

        case .data:
            try self.expect(reply, code: 354)
            self.state = .content
            return .sendContent(DotStuffing.encode(self.content))

        case .content:
            try self.expect(reply, code: 250)
            self.isMessageAccepted = true
            self.state = .quit
            return .send(.quit)

        case .quit:
            // Whatever the answer to QUIT, the message is delivered and the session is over.
            self.state = .closed
            return .close
        }
    }

    /// Called once TLS is up after STARTTLS; the client must say EHLO again (RFC 3207 section 4.2).
    public mutating func tlsEstablished() -> SMTPAction {
        precondition(self.state == .awaitingTLS, "tlsEstablished() called without a STARTTLS in progress")
        return self.sendHello(secured: true)
    }

    private var requiredCredentials: SMTPCredentials {
        guard let credentials = self.credentials else { preconditionFailure("AUTH state without credentials") }
        return credentials
    }

    private func expect(_ reply: SMTPReply, code: Int) throws(SMTPError) {
        guard reply.code == code else { throw SMTPError.rejected(self.stage, reply) }
    }

    private mutating func sendHello(secured: Bool) -> SMTPAction {
        self.state = .ehlo(secured: secured)
        return .send(.ehlo(self.heloName))
    }

    private mutating func authenticateOrSendMailFrom() throws(SMTPError) -> SMTPAction {
        guard let credentials = self.credentials else { return try self.sendMailFrom() }
        let mechanisms = self.capabilities.authMechanisms
        // PLAIN needs one round trip instead of three; both send the password as is, which TLS protects.
        if mechanisms.contains("PLAIN") {
            self.state = .authPlain
            return .send(.authPlain(initialResponse: credentials.plainInitialResponse))
        }
        if mechanisms.contains("LOGIN") {
            self.state = .authLoginUsername
            return .send(.authLogin)
        }
        let offered = mechanisms.isEmpty ? "none" : mechanisms.sorted().joined(separator: ", ")
        throw SMTPError.unsupported("credentials are configured but the server offers no AUTH PLAIN or LOGIN (offered: \(offered))")
    }

    private mutating func sendMailFrom() throws(SMTPError) -> SMTPAction {
        if let limit = self.capabilities.maximumMessageSize, self.content.count > limit {
            throw SMTPError.messageTooLarge(size: self.content.count, limit: limit)
        }
        var parameters: [String] = []
        if self.capabilities.supportsSize {
            parameters.append("SIZE=\(self.content.count)")
        }
        if self.content.contains(where: { $0 >= 0x80 }), self.capabilities.keywords["8BITMIME"] != nil {
            parameters.append("BODY=8BITMIME")
        }
        let addresses = [self.envelope.sender] + self.envelope.recipients
        if let utf8Address = addresses.first(where: { !$0.utf8.allSatisfy { $0 < 0x80 } }) {
            guard self.capabilities.supportsSMTPUTF8 else {
                throw SMTPError.invalidAddress("\(utf8Address) is not ASCII and the server does not offer SMTPUTF8")
            }
            parameters.append("SMTPUTF8")
        }
        self.state = .mailFrom
        return .send(.mailFrom(self.envelope.sender, parameters: parameters))
    }

    private mutating func sendRecipient(at index: Int) -> SMTPAction {
        guard index < self.envelope.recipients.count else {
            self.state = .data
            return .send(.data)
        }
        self.state = .recipient(index)
        return .send(.recipient(self.envelope.recipients[index]))
    }
}
