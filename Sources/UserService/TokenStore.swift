import ParleyCore
import ParleyStore
import SQLKit

/// Login codes and refresh tokens in the database: every statement on `login_codes` and `refresh_tokens`. Each step of
/// the login flow writes them together with users, rate limits or the mail outbox, so all run in a caller's transaction.
enum TokenStore {
    /// A login code as stored: its hash (or the mark of a used one) and when it expires.
    struct StoredCode: Sendable, Equatable {
        var hash: String
        var expiresAt: Int64
        /// Used codes stay until the resend window has passed, so an address gets one code per window even after a sign-in.
        var isUsed: Bool { self.hash == TokenStore.usedMark }
    }

    static let usedMark = "used"

    /// What a try at the code of an email met.
    enum Attempt: Sendable, Equatable {
        /// The try is counted; this is the code to compare with.
        case counted(StoredCode)
        /// The email is locked out after too many wrong codes, until then.
        case locked(until: Int64)
        /// The code has had all its tries; it was stored then.
        case burnt(createdAt: Int64)
        /// No code was ever asked for.
        case noCode

        /// The code when the try was counted.
        var counted: StoredCode? {
            if case .counted(let code) = self { return code }
            return nil
        }
    }

    /// A refresh token as stored.
    struct StoredRefreshToken: Sendable {
        var id: String
        var familyID: String
        var userID: String
        var expiresAt: Int64
        var rotatedAt: Int64?
        var revokedAt: Int64?
    }

    /// Stores the code of `email`, replacing one stored at or before `windowStart`; false when a newer one is kept or the
    /// email is locked out (a new code would reset the tries the lockout is there to stop).
    /// One statement decides and writes, so two requests at once cannot both pass the resend window.
    static func storeCode(
        email: String,
        hash: String,
        expiresAt: Int64,
        now: Int64,
        replacingUpTo windowStart: Int64,
        in sql: any SQLDatabase
    ) async throws -> Bool {
        try await sql.raw(
            """
            INSERT INTO login_codes (email, code_hash, attempts, expires_at, created_at) VALUES (\(bind: email), \(bind: hash), 0, \(bind: expiresAt), \(bind: now))
            ON CONFLICT (email) DO UPDATE SET code_hash = excluded.code_hash, attempts = 0, expires_at = excluded.expires_at, created_at = excluded.created_at
            WHERE login_codes.created_at <= \(bind: windowStart) AND login_codes.locked_until <= \(bind: now)
            RETURNING created_at
            """
        ).first() != nil
    }

    /// When the code of `email` was stored, if there is one.
    static func codeCreatedAt(email: String, in sql: any SQLDatabase) async throws -> Int64? {
        try await sql.raw("SELECT created_at FROM login_codes WHERE email = \(bind: email)").first()?.decode(column: "created_at", as: Int64.self)
    }

    /// Until when `email` is locked out (in the past when it is not), if it ever had a code.
    static func lockedUntil(email: String, in sql: any SQLDatabase) async throws -> Int64? {
        try await sql.raw("SELECT locked_until FROM login_codes WHERE email = \(bind: email)").first()?.decode(column: "locked_until", as: Int64.self)
    }

    /// Counts one try at the code of `email` unless it has had `maxAttempts` tries or the email is locked out at `now`.
    /// Counting is the first write: it locks the row, so parallel guesses queue up, each one counts, and each sees the
    /// lockout the guess before it set.
    static func countAttempt(email: String, maxAttempts: Int, now: Int64, in sql: any SQLDatabase) async throws -> Attempt {
        if let row = try await sql.raw(
            """
            UPDATE login_codes SET attempts = attempts + 1
            WHERE email = \(bind: email) AND attempts < \(bind: maxAttempts) AND locked_until <= \(bind: now)
            RETURNING code_hash, expires_at
            """
        ).first() {
            return .counted(
                StoredCode(
                    hash: try row.decode(column: "code_hash", as: String.self),
                    expiresAt: try row.decode(column: "expires_at", as: Int64.self)
                )
            )
        }
        guard let row = try await sql.raw("SELECT locked_until, created_at FROM login_codes WHERE email = \(bind: email)").first() else {
            return .noCode
        }
        let lockedUntil = try row.decode(column: "locked_until", as: Int64.self)
        return lockedUntil > now ? .locked(until: lockedUntil) : .burnt(createdAt: try row.decode(column: "created_at", as: Int64.self))
    }

    /// Counts a wrong code for `email` across its codes and returns how many it has had; a count whose last wrong code
    /// was at or before `forgetBefore` starts again.
    static func recordFailure(email: String, now: Int64, forgetBefore: Int64, in sql: any SQLDatabase) async throws -> Int {
        let row = try await sql.raw(
            """
            UPDATE login_codes SET
                failures = CASE WHEN last_failure_at <= \(bind: forgetBefore) THEN 1 ELSE failures + 1 END,
                last_failure_at = \(bind: now)
            WHERE email = \(bind: email)
            RETURNING failures
            """
        ).first()
        return try row?.decode(column: "failures", as: Int.self) ?? 0
    }

    /// Locks `email` out until `until`: no code is checked or sent for it before then.
    static func lock(email: String, until: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE login_codes SET locked_until = \(bind: until) WHERE email = \(bind: email)").run()
    }

    /// Whether a code (valid or not) is stored for `email`.
    static func codeExists(email: String, in sql: any SQLDatabase) async throws -> Bool {
        try await sql.raw("SELECT 1 AS one FROM login_codes WHERE email = \(bind: email)").first() != nil
    }

    /// Marks the code of `email` used: kept until the resend window has passed, never valid again. Whoever holds the
    /// mailed code is the address's owner: the wrong codes counted before are forgotten.
    static func markCodeUsed(email: String, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw(
            """
            UPDATE login_codes SET code_hash = \(bind: Self.usedMark), expires_at = \(bind: now), failures = 0, locked_until = 0
            WHERE email = \(bind: email)
            """
        ).run()
    }

    /// Stores a refresh token by its hash.
    static func insertRefreshToken(
        hash: String,
        familyID: String,
        userID: String,
        now: Int64,
        expiresAt: Int64,
        in sql: any SQLDatabase
    ) async throws {
        try await sql.raw(
            """
            INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at)
            VALUES (\(bind: Identifier.make()), \(bind: hash), \(bind: familyID), \(bind: userID), \(bind: now), \(bind: expiresAt))
            """
        ).run()
    }

    /// The refresh token with `hash`, if it is one of ours.
    static func refreshToken(hash: String, in sql: any SQLDatabase) async throws -> StoredRefreshToken? {
        guard
            let row = try await sql.raw(
                "SELECT id, family_id, user_id, expires_at, rotated_at, revoked_at FROM refresh_tokens WHERE token_hash = \(bind: hash)"
            ).first()
        else { return nil }
        return StoredRefreshToken(
            id: try row.decode(column: "id", as: String.self),
            familyID: try row.decode(column: "family_id", as: String.self),
            userID: try row.decode(column: "user_id", as: String.self),
            expiresAt: try row.decode(column: "expires_at", as: Int64.self),
            rotatedAt: try row.decode(column: "rotated_at", as: Int64?.self),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self)
        )
    }

    /// Marks refresh token `id` rotated; false when it was rotated or revoked meanwhile (a concurrent rotation won).
    static func markRotated(id: String, now: Int64, in sql: any SQLDatabase) async throws -> Bool {
        try await sql.raw(
            "UPDATE refresh_tokens SET rotated_at = \(bind: now) WHERE id = \(bind: id) AND rotated_at IS NULL AND revoked_at IS NULL RETURNING id"
        ).first() != nil
    }

    /// Revokes every token of the family of `token` not revoked yet, and records that its login session ended, so the
    /// session's sockets close on every chat instance.
    static func revokeFamily(of token: StoredRefreshToken, reason: EndedSessions.Reason, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE refresh_tokens SET revoked_at = \(bind: now) WHERE family_id = \(bind: token.familyID) AND revoked_at IS NULL")
            .run()
        try await EndedSessions.record(sessionID: token.familyID, userID: token.userID, reason: reason, now: now, in: sql)
    }
}
