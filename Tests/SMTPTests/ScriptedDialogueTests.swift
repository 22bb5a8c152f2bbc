import Foundation
import Testing

@testable import SMTP

/// Wire-level behaviour against a scripted server: what the client sends, byte for byte, and what it tolerates.
@Suite("SMTP client against a scripted server")
struct ScriptedDialogueTests {
    let message = MailMessage(
        from: try! MailAddress(parsing: "Parley <no-reply@parley.test>"),
        to: [try! MailAddress(parsing: "ada@example.com")],
        subject: "Hi",
        textBody: "Hello"
    )

    func configuration(port: Int, security: SMTPConfiguration.Security = .plain, credentials: Bool = false) -> SMTPConfiguration {
        SMTPConfiguration(
            host: "127.0.0.1",
            port: port,
            security: security,
            username: credentials ? "user" : nil,
            password: credentials ? "pass" : nil,
            heloName: "client.test",
            commandTimeout: .seconds(10),
            tlsVerification: .none
        )
    }

    @Test("AUTH LOGIN over the wire, with multi-line replies and bare LF line ends")
    func authLoginOverTheWire() async throws {
        let server = try await ScriptedServer.start(
            greeting: "220-mail.test\n220 ESMTP ready\r\n",
            steps: [
                .init(reply: "250-mail.test\r\n250-SIZE 1000000\n250 AUTH LOGIN\r\n"),
                .init(reply: "334 VXNlcm5hbWU6\r\n"),
                .init(reply: "334 UGFzc3dvcmQ6\r\n"),
                .init(reply: "235 2.7.0 ok\r\n"),
                .init(reply: "250 ok\r\n"),
                .init(reply: "250 ok\r\n"),
                .init(reply: "354 go ahead\r\n"),
                .init(reply: "250 queued\r\n", afterContent: true),
                .init(reply: "221 bye\r\n"),
            ]
        )
        defer { server.stop() }
        try await SMTPClient(configuration: self.configuration(port: server.port, credentials: true)).send(self.message)
        let lines = try await server.receivedLines()
        let size = self.message.rendered().count
        #expect(
            lines == [
                "EHLO client.test\r\n", "AUTH LOGIN\r\n", "dXNlcg==\r\n", "cGFzcw==\r\n",
                "MAIL FROM:<no-reply@parley.test> SIZE=\(size)\r\n", "RCPT TO:<ada@example.com>\r\n", "DATA\r\n", "<content>",
                "QUIT\r\n",
            ]
        )
    }

    @Test("data injected behind the STARTTLS 220 is refused before TLS starts")
    func startTLSInjection() async throws {
        let server = try await ScriptedServer.start(
            greeting: "220 mail.test\r\n",
            steps: [
                .init(reply: "250-mail.test\r\n250 STARTTLS\r\n"),
                .init(reply: "220 go ahead\r\n250-evil\r\n250 AUTH PLAIN\r\n"),
            ]
        )
        defer { server.stop() }
        let client = try SMTPClient(configuration: self.configuration(port: server.port, security: .startTLS))
        let error = await #expect(throws: SMTPError.self) { try await client.send(self.message) }
        guard case .protocolViolation = error else {
            Issue.record("expected .protocolViolation, got \(String(describing: error))")
            return
        }
    }

    @Test("a rejected recipient ends with QUIT and a permanent error naming RCPT TO")
    func rejectedRecipient() async throws {
        let server = try await ScriptedServer.start(
            greeting: "220 mail.test\r\n",
            steps: [
                .init(reply: "250 mail.test\r\n"),
                .init(reply: "250 ok\r\n"),
                .init(reply: "550 5.1.1 <ada@example.com>: Recipient address rejected\r\n"),
                .init(reply: "221 bye\r\n"),
            ]
        )
        defer { server.stop() }
        let error = await #expect(throws: SMTPError.self) {
            try await SMTPClient(configuration: self.configuration(port: server.port)).send(self.message)
        }
        #expect(error?.isTransient == false)
        #expect(error?.description == "the SMTP server rejected RCPT TO: 550 5.1.1 <ada@example.com>: Recipient address rejected")
        #expect(try await server.receivedLines().last == "QUIT\r\n")
    }

    @Test("a connection closed after the message was accepted still counts as delivered")
    func closedAfterAcceptance() async throws {
        let server = try await ScriptedServer.start(
            greeting: "220 mail.test\r\n",
            steps: [
                .init(reply: "250 mail.test\r\n"),
                .init(reply: "250 ok\r\n"),
                .init(reply: "250 ok\r\n"),
                .init(reply: "354 go ahead\r\n"),
                .init(reply: "250 queued\r\n", afterContent: true),
            ]
        )
        defer { server.stop() }
        // The script ends by closing the connection instead of answering QUIT.
        try await SMTPClient(configuration: self.configuration(port: server.port)).send(self.message)
    }
}
