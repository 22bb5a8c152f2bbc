import ParleyCore
import ParleyStore
import SQLKit

/// Login codes and refresh tokens in the database: every statement on `login_codes` and `refresh_tokens`. Each step of
/// the login flow writes them together with users, rate limits or the mail outbox, so all run in a caller's transaction.
enum TokenStore {
    /// A login code as stored: its hash (or the mark of a used one) and when it expires.
    struct StoredCode: Sendable {
        var hash: String
        var expiresAt: Int64
        /// Used codes stay until the resend window has passed, so an address gets one code per window even after a sign-in.
        var isUsed: Bool { self.hash == TokenStore.usedMark }
    }

    static let usedMark = "used"

    /// A refresh token as stored.
    struct StoredRefreshToken: Sendable {
        var id: String
        var familyID: String
        var userID: String
        var expiresAt: Int64
        var rotatedAt: Int64?
        var revokedAt: Int64?
    }

    /// Stores the code of `email`, replacing one stored at or before `windowStart`; false when a newer one is kept.
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
            WHERE login_codes.created_at <= \(bind: windowStart)
            RETURNING created_at
            """
        ).first() != nil
    }

    /// When the code of `email` was stored, if there is one.
    static func codeCreatedAt(email: String, in sql: any SQLDatabase) async throws -> Int64? {
        try await sql.raw("SELECT created_at FROM login_codes WHERE email = \(bind: email)").first()?.decode(column: "created_at", as: Int64.self)
    }

    /// Counts one try at the code of `email` and returns it; nil when there is none or it has had `maxAttempts` tries.
    /// Counting is the first write: it locks the row, so parallel guesses queue up and each one counts.
    static func countAttempt(email: String, maxAttempts: Int, in sql: any SQLDatabase) async throws -> StoredCode? {
        guard
            let row = try await sql.raw(
                """
                UPDATE login_codes SET attempts = attempts + 1 WHERE email = \(bind: email) AND attempts < \(bind: maxAttempts)
                RETURNING code_hash, expires_at
                """
            ).first()
        else { return nil }
        return StoredCode(hash: try row.decode(column: "code_hash", as: String.self), expiresAt: try row.decode(column: "expires_at", as: Int64.self))
    }

    /// Whether a code (valid or not) is stored for `email`.
    static func codeExists(email: String, in sql: any SQLDatabase) async throws -> Bool {
        try await sql.raw("SELECT 1 AS one FROM login_codes WHERE email = \(bind: email)").first() != nil
    }

    /// Marks the code of `email` used: kept until the resend window has passed, never valid again.
    static func markCodeUsed(email: String, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE login_codes SET code_hash = \(bind: Self.usedMark), expires_at = \(bind: now) WHERE email = \(bind: email)").run()
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
