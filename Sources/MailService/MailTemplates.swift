import Foundation

/// A rendered mail, before any transport puts it on the wire.
public struct RenderedMail: Sendable, Equatable {
    public var to: String
    public var subject: String
    public var text: String
    public var html: String
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
        default:
            throw UnknownTemplate(description: "unknown mail template \(template)")
        }
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
