#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// One mail to send: sender, recipients, subject, and a plain-text body with an optional HTML alternative.
public struct MailMessage: Hashable, Sendable {
    /// The sender, used for the From header and MAIL FROM.
    public var from: MailAddress
    /// The recipients, used for the To header and RCPT TO.
    public var to: [MailAddress]
    /// The subject, any Unicode text.
    public var subject: String
    /// The plain-text body.
    public var textBody: String
    /// The HTML body; when set the message is `multipart/alternative`.
    public var htmlBody: String?
    /// The Date header.
    public var date: Date
    /// The Message-ID header with its angle brackets, e.g. `<3f2a…@localhost>`.
    public var messageID: String
    /// More header fields, after the standard ones: printable ASCII names and values (`List-Unsubscribe` and the like);
    /// a field with anything else (a CR or LF above all) is left out rather than let it start a header of its own.
    public var extraHeaders: [MailHeader] = []

    /// Creates a message; without a `messageID` a random one in the sender's domain is made.
    public init(
        from: MailAddress,
        to: [MailAddress],
        subject: String,
        textBody: String,
        htmlBody: String? = nil,
        date: Date = Date(),
        messageID: String? = nil
    ) {
        self.from = from
        self.to = to
        self.subject = subject
        self.textBody = textBody
        self.htmlBody = htmlBody
        self.date = date
        self.messageID = messageID ?? Self.makeMessageID(domain: from.domain)
    }

    /// Adds a header field (see ``extraHeaders``).
    public func adding(_ headers: [MailHeader]) -> MailMessage {
        var message = self
        message.extraHeaders += headers
        return message
    }

    /// The envelope that delivers this message to exactly its To recipients.
    public var envelope: SMTPEnvelope {
        SMTPEnvelope(sender: self.from.address, recipients: self.to.map(\.address))
    }

    /// A new `<random@domain>` identifier; 128 random bits make collisions practically impossible.
    public static func makeMessageID(domain: some StringProtocol) -> String {
        var generator = SystemRandomNumberGenerator()
        return "<\(self.randomHex(using: &generator))@\(domain)>"
    }

    static func randomHex(using generator: inout some RandomNumberGenerator) -> String {
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return [high, low].map { value in
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

/// A header field of a mail beyond the standard ones.
public struct MailHeader: Hashable, Sendable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// Whether the field can be written as it is: a name of printable ASCII without a colon, a value of printable ASCII
    /// and spaces (no CR, LF or other control character).
    var isWellFormed: Bool {
        !self.name.isEmpty && self.name.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }
            && self.value.utf8.allSatisfy { $0 >= 32 && $0 < 127 }
    }
}
