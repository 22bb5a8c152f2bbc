import Foundation
public import Logging
import ParleyCore
import SMTP

/// Sends mail through an SMTP server configured by one URL (`PARLEY_SMTP_URL`).
public struct SMTPMailTransport: MailTransport {
    let client: SMTPClient
    let from: MailAddress

    /// Parses `url` and `from`; a bad value is a configuration error naming its variable.
    public init(url: String, from: String) throws {
        do {
            self.client = try SMTPClient(configuration: try SMTPConfiguration(url: url))
        } catch {
            throw ConfigurationError("PARLEY_SMTP_URL", "\(error)")
        }
        do {
            self.from = try MailAddress(parsing: from)
        } catch {
            throw ConfigurationError("PARLEY_MAIL_FROM", "must be an address such as Parley <no-reply@example.com> (\(error))")
        }
    }

    public func deliver(_ mail: RenderedMail, logger: Logger) async throws {
        let recipient: MailAddress
        do {
            recipient = try MailAddress(parsing: mail.to)
        } catch {
            throw MailDeliveryError(isTransient: false, description: "bad recipient address: \(error)")
        }
        var message = MailMessage(from: self.from, to: [recipient], subject: mail.subject, textBody: mail.text, htmlBody: mail.html)
        if let unsubscribe = mail.unsubscribeURL {
            // RFC 8058: a mail client may offer the one-click POST to the link.
            message.extraHeaders = [
                MailHeader(name: "List-Unsubscribe", value: "<\(unsubscribe)>"),
                MailHeader(name: "List-Unsubscribe-Post", value: "List-Unsubscribe=One-Click"),
            ]
        }
        do {
            try await self.client.send(message)
        } catch {
            throw MailDeliveryError(isTransient: error.isTransient, description: "\(error)")
        }
    }
}
