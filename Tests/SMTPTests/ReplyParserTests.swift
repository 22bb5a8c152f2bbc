import Testing

@testable import SMTP

@Suite("Reply parsing")
struct ReplyParserTests {
    @Test("a one-line reply is complete at once")
    func singleLine() throws {
        var parser = SMTPReplyParser()
        let reply = try parser.parse(line: "220 mail.example.com ESMTP ready")
        #expect(reply == SMTPReply(code: 220, "mail.example.com ESMTP ready"))
        #expect(!parser.isInsideReply)
    }

    @Test("a multi-line reply collects its lines until the one with a space")
    func multiLine() throws {
        var parser = SMTPReplyParser()
        #expect(try parser.parse(line: "250-mail.example.com greets you") == nil)
        #expect(parser.isInsideReply)
        #expect(try parser.parse(line: "250-AUTH PLAIN LOGIN") == nil)
        #expect(try parser.parse(line: "250-SIZE 10240000") == nil)
        let reply = try #require(try parser.parse(line: "250 STARTTLS"))
        #expect(reply.code == 250)
        #expect(reply.lines == ["mail.example.com greets you", "AUTH PLAIN LOGIN", "SIZE 10240000", "STARTTLS"])
        #expect(!parser.isInsideReply)
    }

    @Test("a bare code is a reply with no text")
    func bareCode() throws {
        var parser = SMTPReplyParser()
        let reply = try #require(try parser.parse(line: "250"))
        #expect(reply.lines == [""])
        #expect(reply.description == "250")
    }

    @Test("reply classes follow the first digit")
    func replyClasses() {
        #expect(SMTPReply(code: 250, "ok").isPositiveCompletion)
        #expect(SMTPReply(code: 354, "go ahead").isPositiveIntermediate)
        #expect(SMTPReply(code: 451, "later").isTransientNegative)
        #expect(SMTPReply(code: 550, "no").isPermanentNegative)
    }

    @Test(
        "the description joins lines for storage",
        arguments: [
            (SMTPReply(code: 451, "4.3.0 try again later"), "451 4.3.0 try again later"),
            (SMTPReply(code: 550, lines: ["5.1.1 mailbox", "unavailable"]), "550 5.1.1 mailbox unavailable"),
        ]
    )
    func description(reply: SMTPReply, expected: String) {
        #expect(reply.description == expected)
    }

    @Test(
        "lines that are not replies are protocol violations",
        arguments: [
            "hello", "25", "2500 ok", "099 weird", "600 out of range", "25a ok", "250_x",
        ]
    )
    func rejectsGarbage(line: String) {
        var parser = SMTPReplyParser()
        #expect(throws: SMTPError.self) { try parser.parse(line: line) }
    }

    @Test("a multi-line reply may not change its code")
    func rejectsCodeSwitch() throws {
        var parser = SMTPReplyParser()
        _ = try parser.parse(line: "250-first")
        #expect(throws: SMTPError.self) { try parser.parse(line: "251 second") }
    }

    @Test("an overlong line is refused")
    func rejectsOverlongLine() {
        var parser = SMTPReplyParser()
        #expect(throws: SMTPError.self) {
            try parser.parse(line: "250 " + String(repeating: "x", count: SMTPReplyParser.maximumLineLength))
        }
    }

    @Test("EHLO capabilities: AUTH mechanisms, STARTTLS, SIZE, SMTPUTF8")
    func capabilities() {
        let reply = SMTPReply(
            code: 250,
            lines: ["mail.example.com", "PIPELINING", "SIZE 35882577", "auth login Plain XOAUTH2", "STARTTLS", "SMTPUTF8", "8BITMIME"]
        )
        let capabilities = SMTPCapabilities(ehloReply: reply)
        #expect(capabilities.authMechanisms == ["LOGIN", "PLAIN", "XOAUTH2"])
        #expect(capabilities.supportsStartTLS)
        #expect(capabilities.maximumMessageSize == 35_882_577)
        #expect(capabilities.supportsSMTPUTF8)
        #expect(capabilities.keywords["PIPELINING"] == [])
    }

    @Test("the greeting line is not a capability, and SIZE 0 means no limit")
    func capabilitiesEdgeCases() {
        let capabilities = SMTPCapabilities(ehloReply: SMTPReply(code: 250, lines: ["STARTTLS is my name", "SIZE 0", "AUTH=LOGIN"]))
        #expect(!capabilities.supportsStartTLS)
        #expect(capabilities.supportsSize)
        #expect(capabilities.maximumMessageSize == nil)
        #expect(capabilities.authMechanisms == ["LOGIN"])
    }
}
