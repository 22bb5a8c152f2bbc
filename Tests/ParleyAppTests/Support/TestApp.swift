import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOFoundationEssentialsCompat
import ParleyApp
import ParleyCore
import ParleyStore
import ParleyTestSupport
import Testing

/// A Parley process built for one test, its routes served in-process (`app.test(.router)`) on a fresh database, its
/// mail going to a real SMTP server (tests/support/smtpd.py) so that login codes arrive as they would for a person.
struct TestApp: Sendable {
    let client: any TestClientProtocol
    let configuration: ParleyConfiguration
    let mailbox: TestSMTPServer
    /// The process's database, for what a test checks beneath the routes.
    let database: Database

    /// Settings for a suite that signs many people in from one address: the per-address login limits well out of reach.
    static let manySignIns: @Sendable (inout ParleyConfiguration) -> Void = {
        $0.loginIPLimit = 10_000
        $0.verifyIPLimit = 10_000
    }

    /// Settings that sign access tokens with the key `pem` (so a test can forge tokens with other keys beside it).
    static func signing(with pem: String) -> @Sendable (inout ParleyConfiguration) -> Void {
        { $0.jwtPrivateKeyPEM = pem }
    }

    /// One SMTP server for every test of the process (each test signs in its own addresses); it stops when the
    /// test process ends.
    static let mailbox = Task { try await TestSMTPServer.start() }

    /// Builds the application for `role` on a fresh database of `kind`, with `configure` applied to its settings,
    /// runs `test` against it (in-process, or on a port with `.live`), and tears everything down.
    static func run<T: Sendable>(
        _ kind: DatabaseKind,
        role: ServiceRole = .all,
        testing: TestingSetup = .router,
        configure: @Sendable (inout ParleyConfiguration) -> Void = { _ in },
        _ test: @Sendable (TestApp) async throws -> T
    ) async throws -> T {
        let mailbox = try await Self.mailbox.value
        let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-app-\(Identifier.make())")
        defer { try? FileManager.default.removeItem(at: dataDirectory) }
        return try await TestDatabases.withLocation(kind) { location in
            var configuration = try ParleyConfiguration(environment: [:])
            configuration.dataDirectory = dataDirectory.path
            configuration.database = location
            configuration.port = 0
            configuration.smtpURL = "smtp://127.0.0.1:\(mailbox.port)?tls=none"
            // Tests send in bursts: no per-user rates unless a test sets them (RateLimitRouteTests does).
            let unlimited = Rate(burst: 1_000_000, perSecond: 1_000_000)
            configuration.rateLimits.messages = unlimited
            configuration.rateLimits.typing = unlimited
            configuration.rateLimits.groups = unlimited
            configuration.rateLimits.uploads = unlimited
            configure(&configuration)
            let finalConfiguration = configuration
            var logger = Logger(label: "parley.test")
            logger.logLevel = .warning
            let process = try await buildApplication(role: role, configuration: finalConfiguration, logger: logger)
            var application = process.application
            application.addServices(process.services + (process.socketServer.map { [$0] } ?? []))
            // The database closes itself when its service stops; a test that throws may stop it before it ran.
            do {
                let result = try await application.test(testing) { client in
                    try await test(TestApp(client: client, configuration: finalConfiguration, mailbox: mailbox, database: process.database))
                }
                await process.database.close()
                return result
            } catch {
                await process.database.close()
                throw error
            }
        }
    }
}

/// A person signed in through the real flow: their user and tokens.
struct Session: Sendable {
    var userID: String
    var email: String
    var accessToken: String
    var refreshToken: String

    /// The `Authorization` header for this person.
    var headers: HTTPFields { [.authorization: "Bearer \(self.accessToken)"] }
}

extension TestApp {
    /// Signs `email` in as a person does: asks for a code, reads it from the mail the SMTP server received, verifies it.
    func signIn(_ email: String = "user-\(Identifier.make().suffix(12))@example.com") async throws -> Session {
        let earlier = try self.mailbox.deliveries().filter { $0.rcptTos.contains(email) }.count
        let asked = try await self.request(.post, "/api/v1/login", json: #"{"email":"\#(email)"}"#)
        try #require(asked.status == .accepted, "POST /login answered \(asked.status): \(String(buffer: asked.body))")
        let code = try await self.loginCode(for: email, after: earlier)
        let verified = try await self.request(.post, "/api/v1/verify", json: #"{"email":"\#(email)","otp":"\#(code)"}"#)
        try #require(verified.status == .ok, "POST /verify answered \(verified.status): \(String(buffer: verified.body))")
        let body = try verified.json()
        let user = try #require(body["user"] as? [String: Any])
        return Session(
            userID: try #require(user["id"] as? String),
            email: email,
            accessToken: try #require(body["accessToken"] as? String),
            refreshToken: try #require(body["refreshToken"] as? String)
        )
    }

    /// The code in the newest login mail to `email` once more than `count` mails reached it, waiting up to `timeout`.
    func loginCode(for email: String, after count: Int = 0, timeout: Duration = .seconds(10)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let mails = try self.mailbox.deliveries().filter { $0.rcptTos.contains(email) }
            if mails.count > count, let code = Self.code(in: mails[mails.count - 1].data) { return code }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw FixtureError("no login mail reached \(email) within \(timeout)")
    }

    /// The six-digit code in a mail's text ("Your Parley login code is 123456"), not any other number of its headers.
    static func code(in mail: String) -> String? {
        guard let range = mail.range(of: #"login code is [0-9]{6}(?![0-9])"#, options: .regularExpression) else { return nil }
        return String(mail[range].suffix(6))
    }

    /// Sends a request with an optional JSON body and headers.
    func request(
        _ method: HTTPRequest.Method,
        _ uri: String,
        headers: HTTPFields = [:],
        json: String? = nil,
        body: ByteBuffer? = nil
    ) async throws -> TestResponse {
        var headers = headers
        var payload = body
        if let json {
            headers[.contentType] = "application/json"
            payload = ByteBuffer(string: json)
        }
        return try await self.client.execute(uri: uri, method: method, headers: headers, body: payload)
    }

    /// Sends a request as `session`.
    func request(_ method: HTTPRequest.Method, _ uri: String, as session: Session, json: String? = nil) async throws -> TestResponse {
        try await self.request(method, uri, headers: session.headers, json: json)
    }
}

extension TestResponse {
    /// The body as a JSON object.
    func json(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(buffer: self.body))
        } catch {
            Issue.record("not JSON (\(self.status), \(self.headers)): \(String(buffer: self.body).prefix(300))", sourceLocation: sourceLocation)
            throw error
        }
        return try #require(object as? [String: Any], "not a JSON object: \(String(buffer: self.body))")
    }

    /// Checks the contract's error shape, `{"error":{"code","message"}}`, with `status` and `code`.
    func expectError(_ status: HTTPResponse.Status, code: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        self.expectRequestID(sourceLocation: sourceLocation)
        #expect(self.status == status, "expected \(status), got \(self.status): \(String(buffer: self.body))", sourceLocation: sourceLocation)
        let body = try self.json()
        #expect(Set(body.keys) == ["error"], sourceLocation: sourceLocation)
        let error = try #require(body["error"] as? [String: Any], sourceLocation: sourceLocation)
        #expect(Set(error.keys) == ["code", "message"], sourceLocation: sourceLocation)
        #expect(error["code"] as? String == code, "code \(error["code"] ?? "none"), wanted \(code)", sourceLocation: sourceLocation)
        #expect((error["message"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    }
}
