import Foundation
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import Testing

@testable import UserService

/// The limits that keep login codes from being guessed and keep one client from locking an address's owner out
/// (docs/deploy.md, "Login limits"). Time is the service's `now`, moved by the test: a day passes in a second.
@Suite("Login limits on SQLite and PostgreSQL")
struct LoginLimitTests {
    static let day: Int64 = 86_400_000

    func service(_ database: Database, _ configure: (inout ParleyConfiguration) -> Void = { _ in }) async throws -> UserService {
        var configuration = ParleyConfiguration()
        configure(&configuration)
        let tokens = await TokenIssuer(key: SigningKeyFixture.key, accessTokenLifetime: 900, refreshTokenLifetime: 3600)
        let signer = try await FileURLSigner.load(database: database, baseURL: "")
        return UserService(database: database, tokens: tokens, settings: .init(configuration: configuration), signer: signer, mailQueued: nil)
    }

    /// The code of the newest login mail queued for `email`.
    static func latestCode(for email: String, in database: Database) async throws -> String {
        let payload = try await database.transaction { sql in
            try await sql.raw(
                "SELECT payload FROM mail_outbox WHERE recipient = \(bind: email) ORDER BY created_at DESC, id DESC LIMIT 1"
            ).first()?.decode(column: "payload", as: String.self)
        }
        struct Payload: Decodable { var code: String }
        return try JSONDecoder().decode(Payload.self, from: Data(try #require(payload).utf8)).code
    }

    /// A code that is not `code`.
    static func wrong(_ code: String?) -> String {
        String(format: "%06d", ((code.flatMap { Int($0) } ?? 0) + 1) % 1_000_000)
    }

    /// Guesses wrong codes for `email` from `address()` from `start` to `end`, as fast as the service lets anyone: after a
    /// refusal it waits the `Retry-After` it was given, and whenever the code is used up it asks for a new one. Returns the
    /// wrong codes the service checked and the waits it was told.
    static func guess(
        _ users: UserService,
        _ database: Database,
        email: String,
        from address: () -> String,
        start: Int64,
        end: Int64
    ) async throws -> (checked: Int, waits: [Int]) {
        var (now, checked, waits, code) = (start, 0, [Int](), String?.none)
        while now <= end {
            do {
                _ = try await users.verify(email: email, code: Self.wrong(code), clientIP: address(), now: now)
                Issue.record("a wrong code signed in")
                break
            } catch LoginError.wrongCode {
                checked += 1
                continue
            } catch LoginError.tooManyAttempts(let wait) {
                waits.append(wait)
                now += Int64(wait) * 1000
            } catch LoginError.noCode, LoginError.codeExpired {
            }
            guard now <= end else { break }
            do {
                try await users.requestCode(email: email, clientIP: address(), requestID: "guess", now: now)
                code = try await Self.latestCode(for: email, in: database)
            } catch LoginError.codeSentRecently(let wait), LoginError.tooManyAttempts(let wait) {
                now += Int64(wait) * 1000
            }
        }
        return (checked, waits)
    }

    @Test("with the default settings an email has 104 wrong codes checked a day, behind a lockout of 1, 2, 4, 8, then 15 minutes")
    func defaultBudget() {
        let settings = UserService.Settings(configuration: ParleyConfiguration())
        #expect((1...10).map(settings.lockoutSeconds(afterFailures:)) == [0, 0, 0, 0, 60, 120, 240, 480, 900, 900])
        #expect(settings.guessBudget() == 104)
    }

    @Test(
        "guesses from a fresh address each time, over many fresh codes, get the budget and no more in a day",
        arguments: DatabaseKind.allCases
    )
    func budgetAcrossCodesAndAddresses(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database)
            var counter = 0
            let start = Timestamp.millis() - 2 * Self.day
            let (checked, waits) = try await Self.guess(
                users,
                database,
                email: "target@example.com",
                from: {
                    counter += 1
                    return "10.\(counter >> 16 & 255).\(counter >> 8 & 255).\(counter & 255)"
                },
                start: start,
                end: start + Self.day
            )

            #expect(checked == 104)
            #expect(checked == users.settings.guessBudget())
            // The lockout grows with every wrong code past the fifth, and stops at the maximum.
            #expect(Array(waits.prefix(6)) == [60, 120, 240, 480, 900, 900])
            #expect(waits.max() == 900)
        }
    }

    @Test("a lockout refuses even the right code and a new one; signing in afterwards forgets the wrong codes", arguments: DatabaseKind.allCases)
    func lockoutRefusesEverything(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database)
            let (email, ip) = ("locked@example.com", "192.0.2.1")
            let start = Timestamp.millis() - Self.day
            try await users.requestCode(email: email, clientIP: ip, requestID: "r", now: start)
            let code = try await Self.latestCode(for: email, in: database)
            for _ in 0..<4 {
                await #expect(throws: LoginError.wrongCode) { try await users.verify(email: email, code: Self.wrong(code), clientIP: ip, now: start) }
            }
            // Four wrong codes: not locked yet, the right one signs in and the count starts again.
            _ = try await users.verify(email: email, code: code, clientIP: ip, now: start)
            try await users.requestCode(email: email, clientIP: ip, requestID: "r", now: start + 60_000)
            let second = try await Self.latestCode(for: email, in: database)
            for _ in 0..<4 {
                await #expect(throws: LoginError.wrongCode) {
                    try await users.verify(email: email, code: Self.wrong(second), clientIP: "192.0.2.2", now: start + 60_000)
                }
            }
            await #expect(throws: LoginError.wrongCode) {
                try await users.verify(email: email, code: Self.wrong(second), clientIP: "192.0.2.3", now: start + 60_000)
            }
            // The fifth wrong code locks the email for a minute: neither the right code nor a new code meanwhile.
            await #expect(throws: LoginError.tooManyAttempts(retryAfter: 30)) {
                try await users.verify(email: email, code: second, clientIP: ip, now: start + 90_000)
            }
            await #expect(throws: LoginError.tooManyAttempts(retryAfter: 30)) {
                try await users.requestCode(email: email, clientIP: ip, requestID: "r", now: start + 90_000)
            }
            try await users.requestCode(email: email, clientIP: ip, requestID: "r", now: start + 120_000)
            let third = try await Self.latestCode(for: email, in: database)
            _ = try await users.verify(email: email, code: third, clientIP: ip, now: start + 121_000)
        }
    }

    @Test(
        "one address cannot keep an address's owner locked out: after its share of wrong codes it is not heard, and the owner signs in",
        arguments: DatabaseKind.allCases
    )
    func ownerSignsInDespiteOneAttacker(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database)
            let (email, attacker, owner) = ("owner@example.com", "203.0.113.7", "198.51.100.20")
            let start = Timestamp.millis() - 2 * Self.day
            let (checked, waits) = try await Self.guess(users, database, email: email, from: { attacker }, start: start, end: start + 3_600_000)
            #expect(checked == users.settings.addressFailureLimit)
            // Its last refusal lasts until its wrong codes are forgotten (a day after the first).
            #expect(try #require(waits.last) > 80_000)

            // The owner, from their own address, after the longest lockout, asks for a code while the attacker goes on.
            let later = start + 3_600_000
            try await users.requestCode(email: email, clientIP: owner, requestID: "owner", now: later)
            let code = try await Self.latestCode(for: email, in: database)
            for _ in 0..<20 {
                let refusal = await #expect(throws: LoginError.self) {
                    try await users.verify(email: email, code: Self.wrong(code), clientIP: attacker, now: later + 1000)
                }
                guard case .tooManyAttempts? = refusal else {
                    Issue.record("\(String(describing: refusal))")
                    return
                }
            }
            let session = try await users.verify(email: email, code: code, clientIP: owner, now: later + 2000)
            #expect(session.user.email == email)
        }
    }

    @Test("code checks are limited per client address, IPv6 addresses by their /64", arguments: DatabaseKind.allCases)
    func verifyAddressLimit(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database) { $0.verifyIPLimit = 3 }
            let now = Timestamp.millis()
            for index in 0..<3 {
                // Addresses that never had a code: each check counts, whatever it finds.
                await #expect(throws: LoginError.noCode) {
                    try await users.verify(email: "a\(index)@example.com", code: "123456", clientIP: "2001:db8:1:2::\(index + 1)", now: now)
                }
            }
            await #expect(throws: LoginError.verifyAddressLimited(retryAfter: 600)) {
                try await users.verify(email: "b@example.com", code: "123456", clientIP: "2001:db8:1:2:ffff:ffff:ffff:ffff", now: now)
            }
            await #expect(throws: LoginError.noCode) {
                try await users.verify(email: "b@example.com", code: "123456", clientIP: "2001:db8:1:3::1", now: now)
            }
            await #expect(throws: LoginError.noCode) {
                try await users.verify(email: "b@example.com", code: "123456", clientIP: "192.0.2.1", now: now)
            }
        }
    }

    @Test("code requests are limited per client address, IPv6 addresses by their /64", arguments: DatabaseKind.allCases)
    func loginAddressLimitBucketsIPv6(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database) { $0.loginIPLimit = 2 }
            let now = Timestamp.millis()
            try await users.requestCode(email: "c1@example.com", clientIP: "2001:db8:aa:1::1", requestID: "r", now: now)
            try await users.requestCode(email: "c2@example.com", clientIP: "2001:db8:aa:1:8000::9", requestID: "r", now: now)
            await #expect(throws: LoginError.addressLimited(retryAfter: 600)) {
                try await users.requestCode(email: "c3@example.com", clientIP: "2001:0db8:00aa:0001::abcd", requestID: "r", now: now)
            }
            try await users.requestCode(email: "c3@example.com", clientIP: "2001:db8:aa:2::1", requestID: "r", now: now)
        }
    }

    @Test("every login limit is a setting, with the documented default, and a bad one names its variable")
    func settings() throws {
        let defaults = try ParleyConfiguration(environment: [:])
        #expect(defaults.verifyIPLimit == 30 && defaults.verifyIPWindowSeconds == 600)
        #expect(defaults.loginLockoutBaseSeconds == 60 && defaults.loginLockoutMaxSeconds == 900)
        #expect(defaults.loginFailureWindowSeconds == 86400 && defaults.loginAddressFailureLimit == 10)
        let set = try ParleyConfiguration(environment: [
            "PARLEY_VERIFY_IP_LIMIT": "7", "PARLEY_VERIFY_IP_WINDOW_SECONDS": "70", "PARLEY_LOGIN_LOCKOUT_BASE_SECONDS": "2",
            "PARLEY_LOGIN_LOCKOUT_MAX_SECONDS": "20", "PARLEY_LOGIN_FAILURE_WINDOW_SECONDS": "3600", "PARLEY_LOGIN_ADDRESS_FAILURE_LIMIT": "4",
        ])
        #expect(set.verifyIPLimit == 7 && set.verifyIPWindowSeconds == 70 && set.loginLockoutBaseSeconds == 2)
        #expect(set.loginLockoutMaxSeconds == 20 && set.loginFailureWindowSeconds == 3600 && set.loginAddressFailureLimit == 4)
        let bad: [(String, String)] = [
            ("PARLEY_VERIFY_IP_LIMIT", "many"), ("PARLEY_LOGIN_LOCKOUT_MAX_SECONDS", "30"), ("PARLEY_LOGIN_FAILURE_WINDOW_SECONDS", "600"),
            ("PARLEY_LOGIN_ADDRESS_FAILURE_LIMIT", "0"), ("PARLEY_LOGIN_LOCKOUT_BASE_SECONDS", "0"),
        ]
        for (variable, value) in bad {
            #expect(throws: ConfigurationError.self, "\(variable)=\(value)") { try ParleyConfiguration(environment: [variable: value]) }
            do {
                _ = try ParleyConfiguration(environment: [variable: value])
            } catch let error as ConfigurationError {
                #expect(error.variable == variable)
            }
        }
    }

    @Test(
        "a client address's bucket: IPv4 itself, IPv6 its /64, IPv4-mapped IPv6 the IPv4",
        arguments: [
            ("192.0.2.1", "192.0.2.1"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:0DB8:0001:0002:ffff:1:2:3", "2001:db8:1:2::/64"),
            ("::1", "0:0:0:0::/64"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("unknown", "unknown"),
        ]
    )
    func addressBuckets(address: String, bucket: String) {
        #expect(IPAddressText.bucket(address) == bucket)
    }
}
