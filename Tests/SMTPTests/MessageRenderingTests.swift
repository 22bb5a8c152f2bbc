import Foundation
import ParleyTestSupport
import Testing

@testable import SMTP

@Suite("Message rendering")
struct MessageRenderingTests {
    let from = try! MailAddress(parsing: "Parley <no-reply@parley.test>")
    let to = try! MailAddress(parsing: "Ada Lovelace <ada@example.com>")

    func message(subject: String = "Your login code", text: String = "Code: 123456", html: String? = "<p>Code: <b>123456</b></p>") -> MailMessage {
        MailMessage(
            from: self.from,
            to: [self.to],
            subject: subject,
            textBody: text,
            htmlBody: html,
            date: Date(timeIntervalSince1970: 1_764_097_800),
            messageID: "<abc123@parley.test>"
        )
    }

    func lines(of text: String) -> [Substring] {
        text.split(separator: "\r\n", omittingEmptySubsequences: false)
    }

    func header(_ name: String, in text: String) -> String? {
        // Unfold: a line starting with white space continues the previous header.
        let headerBlock = text.components(separatedBy: "\r\n\r\n")[0].replacingOccurrences(of: "\r\n ", with: " ")
        return headerBlock.components(separatedBy: "\r\n").first { $0.hasPrefix("\(name): ") }.map { String($0.dropFirst(name.count + 2)) }
    }

    @Test("the headers are there with RFC 5322 Date and the given Message-ID")
    func headers() {
        let text = self.message().renderedText(boundary: "=_b")
        #expect(self.header("Date", in: text) == "Tue, 25 Nov 2025 19:10:00 +0000")
        #expect(self.header("From", in: text) == "Parley <no-reply@parley.test>")
        #expect(self.header("To", in: text) == "Ada Lovelace <ada@example.com>")
        #expect(self.header("Subject", in: text) == "Your login code")
        #expect(self.header("Message-ID", in: text) == "<abc123@parley.test>")
        #expect(self.header("MIME-Version", in: text) == "1.0")
        #expect(self.header("Content-Type", in: text) == "multipart/alternative; boundary=\"=_b\"")
    }

    @Test("extra header fields follow the standard ones; one with a line break or a bad name is left out")
    func extraHeaders() {
        let url = "https://chat.example.com/api/v1/unsubscribe?user=u_0123456789abcdef&sig=" + String(repeating: "A", count: 43)
        let text = self.message().adding([
            MailHeader(name: "List-Unsubscribe", value: "<\(url)>"),
            MailHeader(name: "List-Unsubscribe-Post", value: "List-Unsubscribe=One-Click"),
            MailHeader(name: "X-Injected", value: "a\r\nBcc: victim@example.com"),
            MailHeader(name: "Bad: Name", value: "x"),
        ]).renderedText(boundary: "=_b")
        #expect(self.header("List-Unsubscribe", in: text) == "<\(url)>")
        #expect(self.header("List-Unsubscribe-Post", in: text) == "List-Unsubscribe=One-Click")
        #expect(!text.contains("Bcc:") && !text.contains("X-Injected") && !text.contains("Bad: Name"))
        for line in self.lines(of: text) {
            #expect(line.utf8.count <= 998)
        }
    }

    @Test("the whole message renders byte for byte")
    func exactRendering() {
        let text = self.message(text: "Hi Ada,\nyour code is 123456.", html: "<p>Hi</p>").renderedText(boundary: "=_b")
        let expected = [
            "Date: Tue, 25 Nov 2025 19:10:00 +0000",
            "From: Parley <no-reply@parley.test>",
            "To: Ada Lovelace <ada@example.com>",
            "Subject: Your login code",
            "Message-ID: <abc123@parley.test>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative;",
            " boundary=\"=_b\"",
            "",
            "--=_b",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            "Hi Ada,",
            "your code is 123456.",
            "--=_b",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
            "<p>Hi</p>",
            "--=_b--",
            "",
        ].joined(separator: "\r\n")
        #expect(text == expected)
    }

    @Test("without HTML the message is a single text/plain part")
    func textOnly() {
        let text = self.message(html: nil).renderedText(boundary: "=_b")
        #expect(self.header("Content-Type", in: text) == "text/plain; charset=utf-8")
        #expect(!text.contains("multipart"))
    }

    @Test("every line ends in CRLF and is at most 78 characters, even with long UTF-8 text")
    func lineDiscipline() {
        let longSubject = String(repeating: "Grüße aus Köln — ", count: 8)
        let longText = String(repeating: "Ünïcödé wörds and = signs\tand tabs ", count: 20) + "\n\n.leading dot\ntrailing space "
        let bytes = self.message(subject: longSubject, text: longText, html: "<p>" + longText + "</p>").rendered()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\r"))
        #expect(text.hasSuffix("\r\n"))
        for line in self.lines(of: text) {
            #expect(line.utf8.count <= 78, "line too long: \(line)")
        }
        #expect(bytes.allSatisfy { $0 < 0x80 }, "headers and quoted-printable bodies are 7-bit")
    }

    @Test("a UTF-8 subject becomes encoded-words that decode back")
    func encodedSubject() throws {
        let subject = "Dein Anmeldecode für Parley 🔐 — bitte nicht weitergeben, gültig für fünf Minuten"
        let text = self.message(subject: subject).renderedText(boundary: "=_b")
        let encoded = try #require(self.header("Subject", in: text))
        #expect(encoded.hasPrefix("=?utf-8?B?"))
        #expect(try Self.decodeEncodedWords(encoded) == subject)
        for word in encoded.split(separator: " ") {
            #expect(word.count <= 75, "an encoded-word is at most 75 characters")
        }
    }

    @Test("a UTF-8 display name becomes an encoded-word before the address")
    func encodedDisplayName() throws {
        var message = self.message()
        message.to = [try MailAddress(parsing: "Jürgen Groß <juergen@example.com>")]
        let to = try #require(self.header("To", in: message.renderedText(boundary: "=_b")))
        #expect(to.hasSuffix(" <juergen@example.com>"))
        #expect(try Self.decodeEncodedWords(String(to.dropLast(" <juergen@example.com>".count))) == "Jürgen Groß")
    }

    @Test("an ASCII display name with specials is quoted")
    func quotedDisplayName() throws {
        var message = self.message()
        message.to = [try MailAddress(address: "jane@example.com", displayName: #"Doe, "JD" Jane"#), self.to]
        let to = try #require(self.header("To", in: message.renderedText(boundary: "=_b")))
        #expect(to == #""Doe, \"JD\" Jane" <jane@example.com>, Ada Lovelace <ada@example.com>"#)
    }

    @Test("a long ASCII subject folds between words")
    func foldedSubject() throws {
        let subject = Array(repeating: "word", count: 30).joined(separator: " ")
        let text = self.message(subject: subject).renderedText(boundary: "=_b")
        #expect(text.contains("Subject: word word"))
        #expect(text.contains("\r\n word"))
        #expect(self.header("Subject", in: text) == subject)
    }

    @Test("a line break in the subject cannot add a header")
    func subjectInjection() {
        let text = self.message(subject: "Hello\r\nBcc: victim@example.com").renderedText(boundary: "=_b")
        #expect(!self.lines(of: text).contains { $0.hasPrefix("Bcc:") })
    }

    @Test(
        "quoted-printable escapes '=', non-ASCII, a leading dot and trailing white space",
        arguments: [
            ("a=b", "a=3Db"),
            ("é", "=C3=A9"),
            (".hidden", "=2Ehidden"),
            ("trailing ", "trailing=20"),
            ("tab\t", "tab=09"),
            ("a\nb\r\nc\rd", "a\r\nb\r\nc\r\nd"),
            ("inner space ok", "inner space ok"),
        ]
    )
    func quotedPrintable(input: String, expected: String) {
        #expect(QuotedPrintable.encode(input) == expected)
    }

    @Test("quoted-printable breaks long lines with soft breaks of at most 76 characters")
    func quotedPrintableSoftBreaks() {
        let encoded = QuotedPrintable.encode(String(repeating: "é", count: 40) + String(repeating: "x", count: 100))
        let lines = encoded.components(separatedBy: "\r\n")
        #expect(lines.count > 2)
        #expect(lines.dropLast().allSatisfy { $0.hasSuffix("=") && $0.count <= 76 })
        // An escape is never cut by a soft break: each line is whole escapes and plain characters.
        let wholeTokens = /^(=[0-9A-F]{2}|[^=])*=?$/
        #expect(lines.allSatisfy { $0.wholeMatch(of: wholeTokens) != nil })
    }

    @Test(
        "RFC 5322 dates are UTC with English names",
        arguments: [
            (0.0, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (-1.0, "Wed, 31 Dec 1969 23:59:59 +0000"),
            (951_782_400.0, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_709_208_000.5, "Thu, 29 Feb 2024 12:00:00 +0000"),
            (4_102_444_799.0, "Thu, 31 Dec 2099 23:59:59 +0000"),
        ]
    )
    func rfc5322Date(seconds: Double, expected: String) {
        #expect(RFC5322Date.format(Date(timeIntervalSince1970: seconds)) == expected)
    }

    @Test("a generated Message-ID is random and in the sender's domain")
    func generatedMessageID() {
        let first = MailMessage(from: self.from, to: [self.to], subject: "s", textBody: "t")
        let second = MailMessage(from: self.from, to: [self.to], subject: "s", textBody: "t")
        #expect(first.messageID.hasPrefix("<"))
        #expect(first.messageID.hasSuffix("@parley.test>"))
        #expect(first.messageID.count == "<@parley.test>".count + 32)
        #expect(first.messageID != second.messageID)
    }

    @Test("the envelope is the sender and the To addresses")
    func envelope() {
        #expect(self.message().envelope == SMTPEnvelope(sender: "no-reply@parley.test", recipients: ["ada@example.com"]))
    }

    @Test("Python's email parser reads the message back without defects")
    func pythonParsesIt() async throws {
        let subject = "Grüße, Ada! Dein Code 🔐 für Parley — gültig für fünf Minuten, also beeil dich bitte"
        let text = "Hallo Ada,\n\ndein Code ist 123456. Ünïcödé = fine.\n.a line with a leading dot\n" + String(repeating: "long ", count: 40)
        let html = "<p>Hallo <b>Ada</b>,</p><p>dein Code ist <code>123456</code>. Grüße! 🎉</p>"
        var message = self.message(subject: subject, text: text, html: html)
        message.from = try MailAddress(parsing: "Parley Bot Ünïcode <no-reply@parley.test>")
        let parsed = try await ParsedMail.parse(message.rendered())
        #expect(parsed.defects == [])
        #expect(parsed.subject == subject)
        #expect(parsed.from == "Parley Bot Ünïcode <no-reply@parley.test>")
        #expect(parsed.to == "Ada Lovelace <ada@example.com>")
        #expect(parsed.messageID == "<abc123@parley.test>")
        #expect(parsed.date == "Tue, 25 Nov 2025 19:10:00 +0000")
        #expect(parsed.contentType == "multipart/alternative")
        #expect(parsed.text?.replacingOccurrences(of: "\r\n", with: "\n") == text)
        #expect(parsed.html?.replacingOccurrences(of: "\r\n", with: "\n") == html)
    }

    /// Decodes a run of `=?utf-8?B?…?=` words separated by white space.
    static func decodeEncodedWords(_ text: String) throws -> String {
        var bytes = Data()
        for word in text.split(whereSeparator: \.isWhitespace) {
            guard word.hasPrefix("=?utf-8?B?"), word.hasSuffix("?=") else { throw FixtureError("not an encoded-word: \(word)") }
            let payload = String(word.dropFirst("=?utf-8?B?".count).dropLast(2))
            guard let decoded = Data(base64Encoded: payload) else { throw FixtureError("bad base64 in \(word)") }
            bytes += decoded
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
