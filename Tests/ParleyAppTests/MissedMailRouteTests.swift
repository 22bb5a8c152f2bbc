import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// Missed-message mail through the whole process: a direct message to someone away reaches the real SMTP server with
/// the RFC 8058 headers, its one-click link turns the mail off (and nothing else does without the signature), and the
/// setting is part of `/me`.
@Suite struct MissedMailRouteTests {
    /// Mail after 0.3 s away, at most one an hour, with links to a public address.
    static let quickMail: @Sendable (inout ParleyConfiguration) -> Void = {
        $0.notifyAfterSeconds = 0.3
        $0.notifyIntervalSeconds = 3600
        $0.publicURL = "https://chat.example"
    }

    @Test(arguments: DatabaseKind.allCases)
    func aMissedDirectMessageIsMailedAndItsLinkUnsubscribes(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: Self.quickMail) { app in
            let (ann, bob) = (try await app.signIn(), try await app.signIn())
            let chatID = try await app.directChat(ann, with: bob)
            _ = try await app.send(ann, to: chatID, "are you <coming> & ready?")
            let mail = try await app.mail(to: bob.email, containing: "sent you a message")
            let headers = MailText.headers(of: mail)
            let link = try #require(headers["List-Unsubscribe"].flatMap { MailText.unsubscribeLink(in: $0) })
            #expect(headers["List-Unsubscribe"] == "<https://chat.example\(link)>")
            #expect(headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click")
            let body = MailText.decodedBody(of: mail)
            #expect(body.contains("https://chat.example/#/chat/\(chatID)"))
            // The text as sent in the plain part, escaped in the HTML part.
            #expect(body.contains("are you <coming> & ready?"))
            #expect(body.contains("are you &lt;coming&gt; &amp; ready?"))
            // One mail per period: a second message now is not mailed.
            _ = try await app.send(ann, to: chatID, "hello again")
            try await Task.sleep(for: .seconds(1.5))
            #expect(try app.mails(to: bob.email, containing: "While you were away").count == 1)

            // The link: a page with a button (GET changes nothing), refused without its signature, effective with it.
            let page = try await app.request(.get, "/api/v1\(link.dropFirst("/api/v1".count))", as: nil, raw: "", contentType: nil)
            #expect(page.status == .ok && page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.text.contains(#"<form method="post""#))
            #expect(try await app.me(bob)["emailNotifications"] as? Bool == true)
            let forged = link.replacingOccurrences(of: "sig=", with: "sig=A")
            try await app.request(.post, forged, as: nil, raw: "List-Unsubscribe=One-Click", contentType: "application/x-www-form-urlencoded")
                .expectError(.forbidden, code: "invalid_link", "forged signature")
            let otherUser = link.replacingOccurrences(of: bob.userID, with: ann.userID)
            try await app.request(.post, otherUser, as: nil, raw: "", contentType: nil).expectError(.forbidden, code: "invalid_link", "another user")
            try await app.request(.post, "/api/v1/unsubscribe", as: nil, raw: "", contentType: nil).expectError(
                .forbidden,
                code: "invalid_link",
                "no parameters"
            )
            #expect(try await app.me(ann)["emailNotifications"] as? Bool == true)
            let done = try await app.request(
                .post,
                link,
                as: nil,
                raw: "List-Unsubscribe=One-Click",
                contentType: "application/x-www-form-urlencoded"
            )
            #expect(done.status == .ok && done.text.contains("is off"))
            #expect(try await app.me(bob)["emailNotifications"] as? Bool == false)
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func theSettingIsPartOfTheProfile(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let ann = try await app.signIn()
            #expect(try await app.me(ann)["emailNotifications"] as? Bool == true)
            let off = try await app.request(.patch, "/api/v1/me", as: ann, json: #"{"emailNotifications":false}"#).expectJSON(.ok)
            #expect(off["emailNotifications"] as? Bool == false)
            #expect(try await app.me(ann)["emailNotifications"] as? Bool == false)
            for bad in [#""yes""#, "1", "null", "[]"] {
                try await app.request(.patch, "/api/v1/me", as: ann, json: #"{"emailNotifications":\#(bad)}"#)
                    .expectError(.badRequest, code: "invalid_request", "emailNotifications \(bad)")
            }
            let on = try await app.request(.patch, "/api/v1/me", as: ann, json: #"{"emailNotifications":true,"name":"Ann"}"#).expectJSON(.ok)
            #expect(on["emailNotifications"] as? Bool == true && on["name"] as? String == "Ann")
        }
    }
}

extension TestApp {
    /// `GET /me` as `session`.
    func me(_ session: Session) async throws -> [String: Any] {
        try await self.request(.get, "/api/v1/me", as: session, raw: "", contentType: nil).expectJSON(.ok)
    }

    /// The mails to `email` whose text contains `text`.
    func mails(to email: String, containing text: String) throws -> [String] {
        try self.mailbox.deliveries().filter { $0.rcptTos.contains(email) }.map(\.data).filter { MailText.decodedBody(of: $0).contains(text) }
    }

    /// The first mail to `email` containing `text`, waiting up to `timeout` for it.
    func mail(to email: String, containing text: String, timeout: Duration = .seconds(15)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let mail = try self.mails(to: email, containing: text).first { return mail }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FixtureError("no mail with \"\(text)\" reached \(email) within \(timeout)")
    }
}

/// Reading a mail as the SMTP server received it.
enum MailText {
    /// The header fields, unfolded.
    static func headers(of mail: String) -> [String: String] {
        let block = mail.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n")[0]
        var fields: [String: String] = [:]
        for line in block.replacingOccurrences(of: "\n ", with: " ").split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    /// The subject and the bodies with quoted-printable undone (soft line breaks and =XX escapes).
    static func decodedBody(of mail: String) -> String {
        let text = mail.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "=\n", with: "")
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "="), let end = utf8.index(index, offsetBy: 3, limitedBy: utf8.endIndex),
                let value = UInt8(String(decoding: utf8[utf8.index(after: index)..<end], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                index = end
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The path and query of the unsubscribe link in a `List-Unsubscribe` value.
    static func unsubscribeLink(in value: String) -> String? {
        guard let range = value.range(of: #"/api/v1/unsubscribe\?user=[A-Za-z0-9_-]+&sig=[A-Za-z0-9_-]+"#, options: .regularExpression) else {
            return nil
        }
        return String(value[range])
    }
}
