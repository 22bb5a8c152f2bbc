import Foundation
import Hummingbird
import Logging
import ParleyCore
import ParleyStore
import SQLKit

/// The user service: email one-time-code login, tokens, profiles, JWKS.
public struct UserService: Sendable {
    /// The limits of the login flow.
    public struct Settings: Sendable {
        public var codeLifetimeSeconds: Int
        public var resendSeconds: Int
        public var maxCodeAttempts: Int
        public var ipLimit: Int
        public var ipWindowSeconds: Int

        public init(configuration: ParleyConfiguration) {
            self.codeLifetimeSeconds = configuration.otpTTLSeconds
            self.resendSeconds = configuration.otpResendSeconds
            self.maxCodeAttempts = configuration.otpMaxAttempts
            self.ipLimit = configuration.loginIPLimit
            self.ipWindowSeconds = configuration.loginIPWindowSeconds
        }
    }

    let database: Database
    let tokens: TokenIssuer
    let settings: Settings
    /// Rung after a mail is queued, so an in-process mail worker sends it at once.
    let mailQueued: Wakeup?

    /// Creates the service over `database`.
    public init(database: Database, tokens: TokenIssuer, settings: Settings, mailQueued: Wakeup?) {
        self.database = database
        self.tokens = tokens
        self.settings = settings
        self.mailQueued = mailQueued
    }

    enum LoginOutcome: Sendable {
        case queued
        case ipLimited(retryAfter: Int)
        case tooSoon(retryAfter: Int)
    }

    /// Stores a new code for `email` and queues its mail, in one transaction.
    func requestCode(email: String, clientIP: String, requestID: String) async throws -> LoginOutcome {
        let now = Timestamp.millis()
        let code = Secrets.loginCode()
        let hash = Secrets.codeHash(email: email, code: code, pepper: self.tokens.key.codePepper)
        let outcome = try await self.database.transaction { sql -> LoginOutcome in
            if let wait = try await RateLimiter.hit(
                bucket: "login-ip:\(clientIP)", limit: self.settings.ipLimit, windowSeconds: self.settings.ipWindowSeconds, now: now, in: sql
            ) {
                return .ipLimited(retryAfter: wait)
            }
            let expires = now + Int64(self.settings.codeLifetimeSeconds) * 1000
            let windowStart = now - Int64(self.settings.resendSeconds) * 1000
            // One statement decides and writes, so two requests at once cannot both pass the resend window.
            let stored = try await sql.raw(
                """
                INSERT INTO login_codes (email, code_hash, attempts, expires_at, created_at) VALUES (\(bind: email), \(bind: hash), 0, \(bind: expires), \(bind: now))
                ON CONFLICT (email) DO UPDATE SET code_hash = excluded.code_hash, attempts = 0, expires_at = excluded.expires_at, created_at = excluded.created_at
                WHERE login_codes.created_at <= \(bind: windowStart)
                RETURNING created_at
                """
            ).first()
            guard stored != nil else {
                let row = try await sql.raw("SELECT created_at FROM login_codes WHERE email = \(bind: email)").first()
                let next = (try row?.decode(column: "created_at", as: Int64.self) ?? now) + Int64(self.settings.resendSeconds) * 1000
                // A racing request may have stored a code a moment "after" this one's clock reading: never more than the window.
                return .tooSoon(retryAfter: min(self.settings.resendSeconds, max(1, Int((next - now + 999) / 1000))))
            }
            let payload = #"{"code":"\#(code)","expiresInMinutes":\#(max(1, self.settings.codeLifetimeSeconds / 60))}"#
            try await MailOutbox.enqueue(template: "login_code", recipient: email, payload: payload, requestID: requestID, now: now, in: sql)
            return .queued
        }
        if case .queued = outcome { self.mailQueued?.ring() }
        return outcome
    }

    enum VerifyOutcome: Sendable {
        case verified(UserRecord, accessToken: String, refreshToken: String)
        case noCode
        case expired
        case wrongCode
        case burned
    }

    /// Checks `code` for `email`: single use, limited tries, constant-time comparison.
    func verify(email: String, code: String) async throws -> VerifyOutcome {
        let now = Timestamp.millis()
        let hash = Secrets.codeHash(email: email, code: code, pepper: self.tokens.key.codePepper)
        let outcome = try await self.database.transaction { sql -> VerifyOutcome in
            // Counting the try is the first write: it locks the row, so parallel guesses queue up and each one counts.
            guard let row = try await sql.raw(
                """
                UPDATE login_codes SET attempts = attempts + 1 WHERE email = \(bind: email) AND attempts < \(bind: self.settings.maxCodeAttempts)
                RETURNING code_hash, expires_at
                """
            ).first() else {
                let exists = try await sql.raw("SELECT 1 AS one FROM login_codes WHERE email = \(bind: email)").first() != nil
                return exists ? .burned : .noCode
            }
            let storedHash = try row.decode(column: "code_hash", as: String.self)
            if try row.decode(column: "expires_at", as: Int64.self) <= now { return storedHash == "used" ? .noCode : .expired }
            guard ConstantTime.equals(storedHash, hash) else { return .wrongCode }
            // Used up, but kept until the resend window has passed: one code per email per window, even after a sign-in.
            try await sql.raw("UPDATE login_codes SET code_hash = 'used', expires_at = \(bind: now) WHERE email = \(bind: email)").run()
            let user = try await UserStore.findOrCreate(email: email, now: now, in: sql)
            let refresh = try await self.tokens.newRefreshToken(userID: user.id, family: nil, now: now, in: sql)
            return .verified(user, accessToken: "", refreshToken: refresh)
        }
        guard case .verified(let user, _, let refresh) = outcome else { return outcome }
        return .verified(user, accessToken: try await self.tokens.accessToken(for: user.id), refreshToken: refresh)
    }
}
