import Foundation
import ParleyStore

/// A rendered mail, before any transport puts it on the wire.
public struct RenderedMail: Sendable, Equatable {
    public var to: String
    public var subject: String
    public var text: String
    public var html: String
    /// The one-click unsubscribe link (RFC 8058), for mail a person can turn off; nil for mail they asked for.
    public var unsubscribeURL: String?

    public init(to: String, subject: String, text: String, html: String, unsubscribeURL: String? = nil) {
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.unsubscribeURL = unsubscribeURL
    }
}

/// The mails Parley sends, by template name.
public enum MailTemplates {
    /// An error for a job whose template or values this version cannot render; retrying will not help.
    public struct UnknownTemplate: Error, CustomStringConvertible {
        public let description: String
    }

    /// Renders the job's template with its JSON values.
    public static func render(template: String, recipient: String, payload: String) throws -> RenderedMail {
        switch template {
        case "login_code":
            struct Values: Decodable {
                var code: String
                var expiresInMinutes: Int
            }
            guard let values = try? JSONDecoder().decode(Values.self, from: Data(payload.utf8)) else {
                throw UnknownTemplate(description: "login_code mail without its code")
            }
            return Self.loginCode(to: recipient, code: values.code, minutes: values.expiresInMinutes)
        case MissedMessagesMail.template:
            guard let mail = try? JSONDecoder().decode(MissedMessagesMail.self, from: Data(payload.utf8)), !mail.items.isEmpty else {
                throw UnknownTemplate(description: "missed_messages mail without its messages")
            }
            return Self.missedMessages(to: recipient, mail)
        default:
            throw UnknownTemplate(description: "unknown mail template \(template)")
        }
    }

    /// The mail of unread direct messages and mentions: each with who, where, when, the start of its text and a link
    /// that opens its chat; a line to turn these mails off.
    static func missedMessages(to recipient: String, _ mail: MissedMessagesMail) -> RenderedMail {
        let total = mail.items.count + mail.more
        let first = mail.items[0]
        let subject =
            total == 1
            ? (first.chatName.map { "\(first.senderName) mentioned you in \($0)" } ?? "\(first.senderName) sent you a message")
            : "You have \(total) unread messages on Parley"
        let base = mail.appURL.hasSuffix("/") ? String(mail.appURL.dropLast()) : mail.appURL
        func link(_ item: MissedMessagesMail.Item) -> String {
            "\(base)/#/chat/\(item.chatID.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? item.chatID)"
        }
        func heading(_ item: MissedMessagesMail.Item) -> String {
            item.chatName.map { "\(item.senderName) in \($0)" } ?? item.senderName
        }
        let more = mail.more > 0 ? "and \(mail.more) more unread \(mail.more == 1 ? "message" : "messages")." : nil
        var text = "While you were away, people wrote to you on Parley:\n"
        for item in mail.items {
            text += "\n\(heading(item)), \(Self.time(item.createdAt)):\n  \(item.snippet)\n  \(link(item))\n"
        }
        if let more { text += "\n\(more)\n" }
        text += "\nOpen Parley: \(base)/\n\n"
        text += "You get this mail because you had unread messages and were not connected.\n"
        text += "To stop these mails, open \(mail.unsubscribeURL)\nor turn them off in your profile.\n"
        var html = "<!doctype html>\n<html><body style=\"font-family: system-ui, sans-serif; color: #1f2328;\">\n"
        html += "<p>While you were away, people wrote to you on Parley:</p>\n"
        for item in mail.items {
            html += "<p style=\"margin: 16px 0 4px;\"><b>\(Self.escape(heading(item)))</b> "
            html += "<span style=\"color: #59636e;\">\(Self.time(item.createdAt))</span></p>\n"
            html += "<p style=\"margin: 0 0 4px;\">\(Self.escape(item.snippet))</p>\n"
            html += "<p style=\"margin: 0;\"><a href=\"\(Self.escape(link(item)))\">Open the chat</a></p>\n"
        }
        if let more { html += "<p>\(Self.escape(more))</p>\n" }
        html += "<p><a href=\"\(Self.escape(base))/\">Open Parley</a></p>\n"
        html += "<p style=\"color: #59636e; font-size: 13px;\">You get this mail because you had unread messages and were not connected. "
        html += "<a href=\"\(Self.escape(mail.unsubscribeURL))\">Stop these mails</a>, or turn them off in your profile.</p>\n"
        html += "</body></html>\n"
        return RenderedMail(to: recipient, subject: subject, text: text, html: html, unsubscribeURL: mail.unsubscribeURL)
    }

    /// What a URL carries as it is (RFC 3986's unreserved characters).
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// `millis` as "3 Dec 14:05 UTC".
    static func time(_ millis: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "d MMM HH:mm 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }

    /// Text made safe for HTML content and attribute values.
    static func escape(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&#39;"
            default: output.append(character)
            }
        }
        return output
    }

    static func loginCode(to recipient: String, code: String, minutes: Int) -> RenderedMail {
        let text = """
            Your Parley login code is \(code)

            Enter it on the sign-in page within \(minutes) minutes. It works once.
            If you did not ask to sign in, you can ignore this mail: nobody can sign in without the code.
            """
        let html = """
            <!doctype html>
            <html><body style="font-family: system-ui, sans-serif; color: #1f2328;">
            <p>Your Parley login code is</p>
            <p style="font-size: 28px; font-weight: 700; letter-spacing: 6px;">\(code)</p>
            <p>Enter it on the sign-in page within \(minutes) minutes. It works once.</p>
            <p style="color: #59636e;">If you did not ask to sign in, you can ignore this mail: nobody can sign in without the code.</p>
            </body></html>
            """
        return RenderedMail(to: recipient, subject: "Your Parley login code: \(code)", text: text, html: html)
    }
}
