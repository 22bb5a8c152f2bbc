import Testing

@testable import SMTP

@Suite("SMTP dialogue")
struct DialogueTests {
    let envelope = SMTPEnvelope(sender: "no-reply@parley.test", recipients: ["ada@example.com", "bob@example.com"])
    let content = Array("Subject: hi\r\n\r\n.hello\r\n".utf8)
    let credentials = SMTPCredentials(username: "user", password: "pass")

    func dialogue(startTLS: Bool = false, credentials: SMTPCredentials? = nil) -> SMTPDialogue {
        SMTPDialogue(heloName: "client.test", requiresStartTLS: startTLS, credentials: credentials, envelope: self.envelope, content: self.content)
    }

    static func ehlo(_ capabilities: String...) -> SMTPReply {
        SMTPReply(code: 250, lines: ["mail.test"] + capabilities)
    }

    @Test("plain delivery: EHLO, MAIL FROM, one RCPT TO per recipient, DATA, dot-stuffed content, QUIT")
    func plainDelivery() throws {
        var dialogue = self.dialogue()
        #expect(dialogue.stage == .greeting)
        #expect(try dialogue.receive(SMTPReply(code: 220, "mail.test ESMTP")) == .send(.ehlo("client.test")))
        #expect(try dialogue.receive(Self.ehlo("SIZE 1000", "8BITMIME")) == .send(.mailFrom("no-reply@parley.test", parameters: ["SIZE=23"])))
        #expect(try dialogue.receive(SMTPReply(code: 250, "ok")) == .send(.recipient("ada@example.com")))
        #expect(dialogue.stage == .recipient)
        #expect(try dialogue.receive(SMTPReply(code: 250, "ok")) == .send(.recipient("bob@example.com")))
        #expect(try dialogue.receive(SMTPReply(code: 251, "will forward")) == .send(.data))
        #expect(try dialogue.receive(SMTPReply(code: 354, "go ahead")) == .sendContent(Array("Subject: hi\r\n\r\n..hello\r\n.\r\n".utf8)))
        #expect(!dialogue.isMessageAccepted)
        #expect(try dialogue.receive(SMTPReply(code: 250, "queued")) == .send(.quit))
        #expect(dialogue.isMessageAccepted)
        #expect(try dialogue.receive(SMTPReply(code: 221, "bye")) == .close)
    }

    @Test("STARTTLS: upgrade after 220, EHLO again, then AUTH PLAIN with an initial response")
    func startTLSThenPlain() throws {
        var dialogue = self.dialogue(startTLS: true, credentials: self.credentials)
        _ = try dialogue.receive(SMTPReply(code: 220, "ready"))
        #expect(try dialogue.receive(Self.ehlo("STARTTLS")) == .send(.startTLS))
        #expect(try dialogue.receive(SMTPReply(code: 220, "go ahead")) == .startTLS)
        #expect(dialogue.tlsEstablished() == .send(.ehlo("client.test")))
        let auth = try dialogue.receive(Self.ehlo("AUTH LOGIN PLAIN"))
        #expect(auth == .send(.authPlain(initialResponse: "AHVzZXIAcGFzcw==")))
        #expect(try dialogue.receive(SMTPReply(code: 235, "ok")) == .send(.mailFrom("no-reply@parley.test", parameters: [])))
    }

    @Test("AUTH LOGIN when the server offers no PLAIN")
    func authLogin() throws {
        var dialogue = self.dialogue(credentials: self.credentials)
        _ = try dialogue.receive(SMTPReply(code: 220, "ready"))
        #expect(try dialogue.receive(Self.ehlo("AUTH LOGIN")) == .send(.authLogin))
        #expect(try dialogue.receive(SMTPReply(code: 334, "VXNlcm5hbWU6")) == .send(.authResponse("dXNlcg==")))
        #expect(try dialogue.receive(SMTPReply(code: 334, "UGFzc3dvcmQ6")) == .send(.authResponse("cGFzcw==")))
        #expect(dialogue.stage == .authentication)
        #expect(try dialogue.receive(SMTPReply(code: 235, "ok")) == .send(.mailFrom("no-reply@parley.test", parameters: [])))
    }

    @Test("a 5xx reply is a permanent rejection carrying the reply and the stage")
    func permanentRejection() throws {
        var dialogue = self.dialogue()
        _ = try dialogue.receive(SMTPReply(code: 220, "ready"))
        _ = try dialogue.receive(Self.ehlo())
        _ = try dialogue.receive(SMTPReply(code: 250, "ok"))
        let reply = SMTPReply(code: 550, "5.1.1 <ada@example.com>: user unknown")
        let error = #expect(throws: SMTPError.self) { try dialogue.receive(reply) }
        #expect(error == .rejected(.recipient, reply))
        #expect(error?.isTransient == false)
        #expect(error?.reply == reply)
        #expect(error?.description == "the SMTP server rejected RCPT TO: 550 5.1.1 <ada@example.com>: user unknown")
    }

    @Test("a 4xx reply to the content is transient")
    func transientRejection() throws {
        var dialogue = self.dialogue()
        for reply in [
            SMTPReply(code: 220, "ready"), Self.ehlo(), SMTPReply(code: 250, "ok"), SMTPReply(code: 250, "ok"),
            SMTPReply(code: 250, "ok"), SMTPReply(code: 354, "go"),
        ] {
            _ = try dialogue.receive(reply)
        }
        let error = #expect(throws: SMTPError.self) { try dialogue.receive(SMTPReply(code: 451, "4.3.0 try again later")) }
        #expect(error == .rejected(.message, SMTPReply(code: 451, "4.3.0 try again later")))
        #expect(error?.isTransient == true)
    }

    @Test("a 421 greeting is a transient rejection")
    func busyGreeting() {
        var dialogue = self.dialogue()
        let error = #expect(throws: SMTPError.self) { try dialogue.receive(SMTPReply(code: 421, "too busy")) }
        #expect(error?.isTransient == true)
    }

    @Test("STARTTLS configured but not offered is refused before any credentials are sent")
    func startTLSMissing() throws {
        var dialogue = self.dialogue(startTLS: true, credentials: self.credentials)
        _ = try dialogue.receive(SMTPReply(code: 220, "ready"))
        let error = #expect(throws: SMTPError.self) { try dialogue.receive(Self.ehlo("AUTH PLAIN")) }
        #expect(error?.isTransient == false)
        guard case .unsupported = error else {
            Issue.record("expected .unsupported, got \(String(describing: error))")
            return
        }
    }

    @Test("credentials without a PLAIN or LOGIN offer are refused")
    func noUsableAuth() throws {
        var dialogue = self.dialogue(credentials: self.credentials)
        _ = try dialogue.receive(SMTPReply(code: 220, "ready"))
        let error = #expect(throws: SMTPError.self) { try dialogue.receive(Self.ehlo("AUTH CRAM-MD5")) }
        #expect(error?.description.contains("CRAM-MD5") == true)
    }

    @Test("a server without EHLO gets HELO when nothing needs extensions")
    func heloFallback() throws {
        var dialogue = self.dialogue()
        _ = try dialogue.receive(SMTPReply(code: 220, "ready"))
        #expect(try dialogue.receive(SMTPReply(code: 502, "command not implemented")) == .send(.helo("client.test")))
        #expect(try dialogue.receive(SMTPReply(code: 250, "hi")) == .send(.mailFrom("no-reply@parley.test", parameters: [])))
    }

    @Test("a message over the SIZE limit is refused before MAIL FROM")
    func sizeLimit() throws {
        var dialogue = self.dialogue()
        _ = try dialogue.receive(SMTPReply(code: 220, "ready"))
        let error = #expect(throws: SMTPError.self) { try dialogue.receive(Self.ehlo("SIZE 10")) }
        #expect(error == .messageTooLarge(size: 23, limit: 10))
        #expect(error?.isTransient == false)
    }

    @Test("a UTF-8 address needs SMTPUTF8")
    func utf8Address() throws {
        let envelope = SMTPEnvelope(sender: "no-reply@parley.test", recipients: ["jürgen@example.com"])
        var refused = SMTPDialogue(heloName: "c", requiresStartTLS: false, credentials: nil, envelope: envelope, content: self.content)
        _ = try refused.receive(SMTPReply(code: 220, "ready"))
        #expect(throws: SMTPError.self) { try refused.receive(Self.ehlo()) }

        var accepted = SMTPDialogue(heloName: "c", requiresStartTLS: false, credentials: nil, envelope: envelope, content: self.content)
        _ = try accepted.receive(SMTPReply(code: 220, "ready"))
        #expect(try accepted.receive(Self.ehlo("SMTPUTF8")) == .send(.mailFrom("no-reply@parley.test", parameters: ["SMTPUTF8"])))
    }

    @Test("a reply while waiting for TLS is a protocol violation")
    func replyDuringTLS() throws {
        var dialogue = self.dialogue(startTLS: true)
        _ = try dialogue.receive(SMTPReply(code: 220, "ready"))
        _ = try dialogue.receive(Self.ehlo("STARTTLS"))
        _ = try dialogue.receive(SMTPReply(code: 220, "go ahead"))
        #expect(throws: SMTPError.self) { try dialogue.receive(SMTPReply(code: 250, "injected")) }
    }
}

@Suite("Commands and dot-stuffing")
struct CommandTests {
    @Test(
        "commands render byte for byte with CRLF",
        arguments: [
            (SMTPCommand.ehlo("client.test"), "EHLO client.test\r\n"),
            (.helo("client.test"), "HELO client.test\r\n"),
            (.startTLS, "STARTTLS\r\n"),
            (.authPlain(initialResponse: "AHUAcA=="), "AUTH PLAIN AHUAcA==\r\n"),
            (.authLogin, "AUTH LOGIN\r\n"),
            (.authResponse("dXNlcg=="), "dXNlcg==\r\n"),
            (.mailFrom("a@b.c", parameters: []), "MAIL FROM:<a@b.c>\r\n"),
            (.mailFrom("a@b.c", parameters: ["SIZE=100", "SMTPUTF8"]), "MAIL FROM:<a@b.c> SIZE=100 SMTPUTF8\r\n"),
            (.recipient("x@y.z"), "RCPT TO:<x@y.z>\r\n"),
            (.data, "DATA\r\n"),
            (.reset, "RSET\r\n"),
            (.quit, "QUIT\r\n"),
        ]
    )
    func rendering(command: SMTPCommand, line: String) {
        #expect(command.line == line)
    }

    @Test("credentials never appear in a command's description")
    func redaction() {
        let credentials = SMTPCredentials(username: "user", password: "secret")
        #expect(SMTPCommand.authPlain(initialResponse: credentials.plainInitialResponse).description == "AUTH PLAIN ***")
        #expect(SMTPCommand.authResponse("c2VjcmV0").description == "***")
        #expect(SMTPCommand.ehlo("x").description == "EHLO x")
    }

    @Test(
        "AUTH PLAIN initial response is base64 of NUL user NUL password",
        arguments: [
            ("user", "pass", "AHVzZXIAcGFzcw=="),
            ("tim", "tanstaaftanstaaf", "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"),
            ("ü", "p", "AMO8AHA="),
        ]
    )
    func plainResponse(username: String, password: String, expected: String) {
        #expect(SMTPCredentials(username: username, password: password).plainInitialResponse == expected)
    }

    @Test(
        "dot-stuffing doubles leading dots, normalizes line ends and terminates",
        arguments: [
            ("a\r\nb\r\n", "a\r\nb\r\n.\r\n"),
            ("a\r\nb", "a\r\nb\r\n.\r\n"),
            (".", "..\r\n.\r\n"),
            ("a\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n.\r\n"),
            ("x\r\n.\r\ny", "x\r\n..\r\ny\r\n.\r\n"),
            ("bare\rcr\n\nend", "bare\r\ncr\r\n\r\nend\r\n.\r\n"),
            ("a.b\r\n", "a.b\r\n.\r\n"),
            ("", ".\r\n"),
        ]
    )
    func dotStuffing(input: String, expected: String) {
        #expect(String(decoding: DotStuffing.encode(Array(input.utf8)), as: UTF8.self) == expected)
    }
}
