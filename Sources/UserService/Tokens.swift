import Foundation
import JWTKit
import ParleyCore
import SQLKit

/// Issues access tokens and rotates refresh tokens.
public struct TokenIssuer: Sendable {
    let key: SigningKey
    let signer: JWTKeyCollection
    let accessTokenLifetime: Int
    let refreshTokenLifetime: Int

    /// Signs with `key`.
    public init(key: SigningKey, accessTokenLifetime: Int, refreshTokenLifetime: Int) async {
        self.key = key
        self.signer = JWTKeyCollection()
        await self.signer.add(eddsa: key.privateKey, kid: JWKIdentifier(string: key.kid))
        self.accessTokenLifetime = accessTokenLifetime
        self.refreshTokenLifetime = refreshTokenLifetime
    }

    /// A verifier holding only the public keys (the signing key's and a retired one's), for services in this process.
    public func verifier() async -> any AccessTokenVerifying {
        let keys = JWTKeyCollection()
        for key in self.key.verificationKeys {
            await keys.add(eddsa: key.publicKey, kid: JWKIdentifier(string: key.kid))
        }
        return JWTAccessTokenVerifier(keys: keys)
    }

    /// A signed access token for `userID`.
    public func accessToken(for userID: String, now: Date = Date()) async throws -> String {
        // Whole seconds: NumericDate with a fraction is legal, but some verifiers refuse it.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        return try await self.signer.sign(
            AccessTokenClaims(userID: userID, issuedAt: now, lifetime: TimeInterval(self.accessTokenLifetime)),
            kid: JWKIdentifier(string: self.key.kid)
        )
    }

    /// Stores a new refresh token of `family` (a new family when nil) and returns it.
    func newRefreshToken(userID: String, family: String?, now: Int64, in sql: any SQLDatabase) async throws -> String {
        let token = Secrets.refreshToken()
        try await sql.raw(
            """
            INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at)
            VALUES (\(bind: Identifier.make()), \(bind: Secrets.tokenHash(token)), \(bind: family ?? Identifier.make()), \(bind: userID),
                    \(bind: now), \(bind: now + Int64(self.refreshTokenLifetime) * 1000))
            """
        ).run()
        return token
    }

    /// What presenting a refresh token leads to.
    enum Rotation {
        case rotated(userID: String, newToken: String)
        case reused
        case invalid
    }

    /// Rotates `token`: marks it used and issues its successor; a token used before revokes its whole family.
    func rotate(_ token: String, now: Int64, in sql: any SQLDatabase) async throws -> Rotation {
        guard let row = try await sql.raw(
            "SELECT id, family_id, user_id, expires_at, rotated_at, revoked_at FROM refresh_tokens WHERE token_hash = \(bind: Secrets.tokenHash(token))"
        ).first() else { return .invalid }
        let id = try row.decode(column: "id", as: String.self)
        let family = try row.decode(column: "family_id", as: String.self)
        let userID = try row.decode(column: "user_id", as: String.self)
        if try row.decode(column: "revoked_at", as: Int64?.self) != nil { return .invalid }
        if try row.decode(column: "rotated_at", as: Int64?.self) != nil {
            try await Self.revokeFamily(family, now: now, in: sql)
            return .reused
        }
        if try row.decode(column: "expires_at", as: Int64.self) <= now { return .invalid }
        // The guard on rotated_at makes a concurrent rotation of the same token lose, and count as reuse.
        let claimed = try await sql.raw(
            "UPDATE refresh_tokens SET rotated_at = \(bind: now) WHERE id = \(bind: id) AND rotated_at IS NULL AND revoked_at IS NULL RETURNING id"
        ).first()
        guard claimed != nil else {
            try await Self.revokeFamily(family, now: now, in: sql)
            return .reused
        }
        return .rotated(userID: userID, newToken: try await self.newRefreshToken(userID: userID, family: family, now: now, in: sql))
    }

    /// Revokes the family of `token`, if it is one of ours.
    func revoke(_ token: String, now: Int64, in sql: any SQLDatabase) async throws {
        guard let row = try await sql.raw("SELECT family_id FROM refresh_tokens WHERE token_hash = \(bind: Secrets.tokenHash(token))").first() else {
            return
        }
        try await Self.revokeFamily(try row.decode(column: "family_id", as: String.self), now: now, in: sql)
    }

    static func revokeFamily(_ family: String, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE refresh_tokens SET revoked_at = \(bind: now) WHERE family_id = \(bind: family) AND revoked_at IS NULL").run()
    }
}
