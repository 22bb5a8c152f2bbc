import Foundation
import ParleyTestSupport
import Testing

@testable import SMTP

/// Sends real mail through tests/support/smtpd.py (python3 with aiosmtpd) over the loopback interface.
@Suite("SMTP client against smtpd.py")
struct ClientIntegrationTests {
    let from = try! MailAddress(parsing: "Parley <no-reply@parley.test>")
    let to = try! MailAddress(parsing: "Ada Lovelace <ada@example.com>")

    func message(subject: String = "Dein Code für Parley 🔐") -> MailMessage {
        MailMessage(
            from: self.from,
            to: [self.to],
            subject: subject,
            textBody: "Hallo Ada,\ndein Code ist 123456.\n.Grüße\n",
            htmlBody: "<p>Hallo Ada, dein Code ist <b>123456</b>. Grüße 🎉</p>"
        )
    }

    func configuration(
        port: Int,
        host: String = "127.0.0.1",
        security: SMTPConfiguration.Security = .plain,
        credentials: Bool = false,
        verification: SMTPConfiguration.TLSVerification = .none
    ) -> SMTPConfiguration {
        SMTPConfiguration(
            host: host,
            port: port,
            security: security,
            username: credentials ? "parley" : nil,
            password: credentials ? "s3cret:pw" : nil,
            heloName: "client.parley.test",
            connectTimeout: .seconds(5),
            commandTimeout: .seconds(10),
            tlsVerification: verification
        )
    }

    /// Checks that exactly one message arrived and that Python reads the same subject and bodies back.
    func expectDelivered(_ message: MailMessage, to server: TestSMTPServer) async throws {
        let deliveries = try server.deliveries()
        try #require(deliveries.count == 1)
        let delivery = deliveries[0]
        #expect(delivery.mailFrom == "no-reply@parley.test")
        #expect(delivery.rcptTos == ["ada@example.com"])
        let parsed = try await ParsedMail.parse(Array(delivery.data.utf8))
        #expect(parsed.defects == [])
        #expect(parsed.subject == message.subject)
        #expect(parsed.messageID == message.messageID)
        #expect(parsed.text?.replacingOccurrences(of: "\r\n", with: "\n") == message.textBody)
        #expect(parsed.html?.replacingOccurrences(of: "\r\n", with: "\n") == message.htmlBody)
    }

    @Test("plain SMTP delivers the message intact")
    func plain() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let message = self.message()
        try await SMTPClient(configuration: self.configuration(port: server.port)).send(message)
        try await self.expectDelivered(message, to: server)
    }

    @Test("STARTTLS with AUTH PLAIN, verifying the certificate against its CA file and host name")
    func startTLSWithAuth() async throws {
        let server = try await TestSMTPServer.start(["--auth", "parley:s3cret:pw"] + TestCertificate.serverFlags())
        defer { server.stop() }
        let configuration = self.configuration(
            port: server.port,
            host: "localhost",
            security: .startTLS,
            credentials: true,
            verification: .customCA(pemFile: try TestCertificate.certificate())
        )
        let message = self.message()
        try await SMTPClient(configuration: configuration).send(message)
        try await self.expectDelivered(message, to: server)
    }

    @Test("implicit TLS with AUTH, verifying an IP address against the certificate")
    func implicitTLSWithAuth() async throws {
        let server = try await TestSMTPServer.start(["--auth", "parley:s3cret:pw", "--implicit-tls"] + TestCertificate.serverFlags())
        defer { server.stop() }
        let configuration = self.configuration(
            port: server.port,
            security: .implicitTLS,
            credentials: true,
            verification: .customCA(pemFile: try TestCertificate.certificate())
        )
        let message = self.message(subject: "Plain ASCII subject")
        try await SMTPClient(configuration: configuration).send(message)
        try await self.expectDelivered(message, to: server)
    }

    @Test("a URL configuration with verify=none reaches an implicit TLS server")
    func implicitTLSFromURL() async throws {
        let server = try await TestSMTPServer.start(["--auth", "parley:s3cret:pw", "--implicit-tls"] + TestCertificate.serverFlags())
        defer { server.stop() }
        let configuration = try SMTPConfiguration(url: "smtps://parley:s3cret%3Apw@127.0.0.1:\(server.port)?verify=none")
        let message = self.message()
        try await SMTPClient(configuration: configuration).send(message)
        try await self.expectDelivered(message, to: server)
    }

    @Test("a 451 to DATA is a transient rejection carrying the server's text, and the retry succeeds")
    func transientFailure() async throws {
        let server = try await TestSMTPServer.start(["--fail-first", "1"])
        defer { server.stop() }
        let client = try SMTPClient(configuration: self.configuration(port: server.port))
        let message = self.message()
        let error = await #expect(throws: SMTPError.self) { try await client.send(message) }
        #expect(error?.isTransient == true)
        #expect(error?.reply == SMTPReply(code: 451, "4.3.0 try again later"))
        #expect(error?.description.contains("451 4.3.0 try again later") == true)
        try await client.send(message)
        try await self.expectDelivered(message, to: server)
    }

    @Test("a wrong password is a permanent rejection")
    func wrongPassword() async throws {
        let server = try await TestSMTPServer.start(["--auth", "parley:other"] + TestCertificate.serverFlags())
        defer { server.stop() }
        let configuration = self.configuration(port: server.port, security: .startTLS, credentials: true)
        let error = await #expect(throws: SMTPError.self) { try await SMTPClient(configuration: configuration).send(self.message()) }
        #expect(error?.isTransient == false)
        #expect(error?.reply?.code == 535)
        #expect(try server.deliveries().isEmpty)
    }

    @Test("STARTTLS configured against a server without it fails before any credentials are sent")
    func startTLSNotOffered() async throws {
        let server = try await TestSMTPServer.start()
        defer { server.stop() }
        let configuration = self.configuration(port: server.port, security: .startTLS, credentials: true)
        let error = await #expect(throws: SMTPError.self) { try await SMTPClient(configuration: configuration).send(self.message()) }
        guard case .unsupported = error else {
            Issue.record("expected .unsupported, got \(String(describing: error))")
            return
        }
    }

    @Test("full verification refuses a self-signed certificate")
    func untrustedCertificate() async throws {
        let server = try await TestSMTPServer.start(["--implicit-tls"] + TestCertificate.serverFlags())
        defer { server.stop() }
        let configuration = self.configuration(port: server.port, host: "localhost", security: .implicitTLS, verification: .full)
        let error = await #expect(throws: SMTPError.self) { try await SMTPClient(configuration: configuration).send(self.message()) }
        guard case .tlsFailed = error else {
            Issue.record("expected .tlsFailed, got \(String(describing: error))")
            return
        }
        #expect(try server.deliveries().isEmpty)
    }

    @Test("a closed port is a transient connection failure")
    func closedPort() async throws {
        let port = try await Self.closedPort()
        let error = await #expect(throws: SMTPError.self) {
            try await SMTPClient(configuration: self.configuration(port: port)).send(self.message())
        }
        #expect(error?.isTransient == true)
        guard case .connectionFailed = error else {
            Issue.record("expected .connectionFailed, got \(String(describing: error))")
            return
        }
    }

    @Test("a server that never answers times out, transiently")
    func silentServer() async throws {
        let silent = try await SilentServer.start()
        defer { silent.stop() }
        var configuration = self.configuration(port: silent.port)
        configuration.commandTimeout = .milliseconds(300)
        let error = await #expect(throws: SMTPError.self) { try await SMTPClient(configuration: configuration).send(self.message()) }
        #expect(error == .timedOut(.greeting))
        #expect(error?.isTransient == true)
    }

    @Test("a missing CA file is reported when the client is made")
    func missingCAFile() {
        let configuration = self.configuration(port: 465, security: .implicitTLS, verification: .customCA(pemFile: "/nonexistent/ca.pem"))
        let error = #expect(throws: SMTPError.self) { try SMTPClient(configuration: configuration) }
        #expect(error?.description.contains("/nonexistent/ca.pem") == true)
    }

    /// A port that was just free: bound to learn a free number, then closed without listening.
    static func closedPort() async throws -> Int {
        let program = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()"
        let output = try Python.run(program: program, input: Data())
        return try #require(Int(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}
