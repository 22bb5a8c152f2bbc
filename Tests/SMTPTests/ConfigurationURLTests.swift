import Testing

@testable import SMTP

@Suite("SMTP URL parsing")
struct ConfigurationURLTests {
    @Test("smtp:// with tls=starttls uses STARTTLS on 587 with decoded credentials")
    func startTLSURL() throws {
        let configuration = try SMTPConfiguration(url: "smtp://user%40example.com:p%3Ass%2Fw@mail.example.com?tls=starttls")
        #expect(configuration.host == "mail.example.com")
        #expect(configuration.port == 587)
        #expect(configuration.security == .startTLS)
        #expect(configuration.username == "user@example.com")
        #expect(configuration.password == "p:ss/w")
        #expect(configuration.tlsVerification == .full)
        #expect(configuration.heloName == "localhost")
    }

    @Test("smtp://host:25 is plain without credentials")
    func plainURL() throws {
        let configuration = try SMTPConfiguration(url: "smtp://relay.local:25")
        #expect(configuration.security == .plain)
        #expect(configuration.port == 25)
        #expect(configuration.credentials == nil)
    }

    @Test("smtp:// without a port defaults to 25")
    func plainDefaultPort() throws {
        #expect(try SMTPConfiguration(url: "smtp://relay.local").port == 25)
        #expect(try SMTPConfiguration(url: "smtp://relay.local/?tls=none").port == 25)
    }

    @Test("smtps:// is implicit TLS on 465")
    func implicitTLSURL() throws {
        let configuration = try SMTPConfiguration(url: "smtps://user:pass@smtp.example.com")
        #expect(configuration.security == .implicitTLS)
        #expect(configuration.port == 465)
        #expect(configuration.credentials == SMTPCredentials(username: "user", password: "pass"))
    }

    @Test("smtp:// with tls=tls is implicit TLS too")
    func smtpWithImplicitTLS() throws {
        let configuration = try SMTPConfiguration(url: "smtp://smtp.example.com:2465?tls=tls")
        #expect(configuration.security == .implicitTLS)
        #expect(configuration.port == 2465)
    }

    @Test("verify, ca and helo parameters are read")
    func queryParameters() throws {
        let unverified = try SMTPConfiguration(url: "smtps://127.0.0.1:1465?verify=none&helo=parley.example")
        #expect(unverified.tlsVerification == .none)
        #expect(unverified.heloName == "parley.example")
        let customCA = try SMTPConfiguration(url: "smtp://localhost:587?tls=starttls&ca=%2Ftmp%2Fca.pem")
        #expect(customCA.tlsVerification == .customCA(pemFile: "/tmp/ca.pem"))
    }

    @Test("an IPv6 literal host keeps its port")
    func ipv6Host() throws {
        let configuration = try SMTPConfiguration(url: "smtp://[::1]:2525")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 2525)
    }

    @Test("a password with an unescaped '@' or '/' still parses")
    func lenientPassword() throws {
        let configuration = try SMTPConfiguration(url: "smtp://user:a@b/c@mail.example.com:587?tls=starttls")
        #expect(configuration.password == "a@b/c")
        #expect(configuration.host == "mail.example.com")
    }

    @Test("the description never shows the password")
    func descriptionHidesPassword() throws {
        let configuration = try SMTPConfiguration(url: "smtp://user:secret@mail.example.com:587?tls=starttls")
        #expect(!configuration.description.contains("secret"))
        #expect(configuration.description.contains("user"))
    }

    @Test(
        "bad URLs are rejected with a sentence naming the problem",
        arguments: [
            ("http://mail.example.com", "scheme 'http'"),
            ("mail.example.com:25", "must start with smtp://"),
            ("smtp://", "no host"),
            ("smtp://:25", "no host"),
            ("smtp://mail.example.com:0", "port '0'"),
            ("smtp://mail.example.com:70000", "port '70000'"),
            ("smtp://mail.example.com:abc", "port 'abc'"),
            ("smtp://user@mail.example.com", "no password"),
            ("smtp://:pass@mail.example.com", "empty user name"),
            ("smtp://mail.example.com?tls=ssl", "tls='ssl'"),
            ("smtps://mail.example.com?tls=starttls", "contradicts"),
            ("smtp://mail.example.com?verify=maybe", "verify='maybe'"),
            ("smtp://mail.example.com?tls=tls&verify=none&ca=/x.pem", "cannot both"),
            ("smtp://mail.example.com?port=25", "parameter 'port' is unknown"),
            ("smtp://mail.example.com/path", "must not have a path"),
            ("smtp://us%zzer:pw@mail.example.com", "invalid percent escape"),
            ("smtp://mail.example.com?helo=two%20words", "'helo'"),
            ("smtp://[::1:25", "closing ']'"),
        ]
    )
    func rejectsBadURL(url: String, expected: String) {
        #expect {
            try SMTPConfiguration(url: url)
        } throws: { error in
            let message = (error as? SMTPConfigurationError)?.message ?? ""
            return message.contains(expected) && !message.contains("\n")
        }
    }

    @Test("an error never repeats the password")
    func errorHidesPassword() {
        #expect {
            try SMTPConfiguration(url: "smtp://user:hunter2@mail.example.com:99999")
        } throws: { error in
            !String(describing: error).contains("hunter2")
        }
    }
}
