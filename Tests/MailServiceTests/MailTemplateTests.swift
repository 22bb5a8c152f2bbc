import ParleyCore
import Testing

@testable import MailService

@Suite("Mail templates and retry timing")
struct MailTemplateTests {
    @Test("the login code mail carries the code in subject, text and HTML")
    func loginCodeMail() throws {
        let mail = try MailTemplates.render(template: "login_code", recipient: "a@b.co", payload: #"{"code":"012345","expiresInMinutes":5}"#)
        #expect(mail.to == "a@b.co")
        #expect(mail.subject.contains("012345"))
        #expect(mail.text.hasPrefix("Your Parley login code is 012345"))
        #expect(mail.html.contains("012345"))
        #expect(mail.text.contains("5 minutes"))
    }

    @Test("an unknown template or a payload without its values is refused, not sent")
    func unknownTemplate() {
        #expect(throws: MailTemplates.UnknownTemplate.self) { try MailTemplates.render(template: "nope", recipient: "a@b.co", payload: "{}") }
        #expect(throws: MailTemplates.UnknownTemplate.self) { try MailTemplates.render(template: "login_code", recipient: "a@b.co", payload: "{}") }
    }
}
