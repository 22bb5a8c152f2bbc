public import Logging

/// Something that delivers a rendered mail: SMTP, or the server log.
public protocol MailTransport: Sendable {
    /// Delivers `mail`; throws ``MailDeliveryError`` when it could not.
    func deliver(_ mail: RenderedMail, logger: Logger) async throws
}

/// Why a delivery failed, and whether trying again may help.
public struct MailDeliveryError: Error, CustomStringConvertible {
    /// True for failures that may pass (a server down, a 4xx reply); false when the server refused for good (5xx).
    public let isTransient: Bool
    public let description: String

    public init(isTransient: Bool, description: String) {
        self.isTransient = isTransient
        self.description = description
    }
}

/// Prints each mail to the server log: the default of the all-in-one run, so a person can sign in without a mail server.
public struct LogMailTransport: MailTransport {
    public init() {}

    public func deliver(_ mail: RenderedMail, logger: Logger) async throws {
        let firstLine = mail.text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? mail.subject
        logger.notice(
            "mail for \(mail.to) (log transport, set PARLEY_SMTP_URL to send it): \(firstLine)",
            metadata: ["to": .string(mail.to), "subject": .string(mail.subject)]
        )
    }
}
