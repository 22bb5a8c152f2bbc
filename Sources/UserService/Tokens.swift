public import Foundation
import JWTKit
public import ParleyCore
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
        try await TokenStore.insertRefreshToken(
            hash: Secrets.tokenHash(token),
            familyID: family ?? Identifier.make(),
            userID: userID,
            now: now,
            expiresAt: now + Int64(self.refreshTokenLifetime) * 1000,
            in: sql
        )
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
        guard let stored = try await TokenStore.refreshToken(hash: Secrets.tokenHash(token), in: sql) else { return .invalid }
        if stored.revokedAt != nil { return .invalid }
        if stored.rotatedAt != nil {
            try await TokenStore.revokeFamily(stored.familyID, now: now, in: sql)
            return .reused
        }
        if stored.expiresAt <= now { return .invalid }
        // Marking it rotated is guarded: a concurrent rotation of the same token loses, and counts as reuse.
        guard try await TokenStore.markRotated(id: stored.id, now: now, in: sql) else {
            try await TokenStore.revokeFamily(stored.familyID, now: now, in: sql)
            return .reused
        }
        let successor = try await self.newRefreshToken(userID: stored.userID, family: stored.familyID, now: now, in: sql)
        return .rotated(userID: stored.userID, newToken: successor)
    }

    /// Revokes the family of `token`, if it is one of ours.
    func revoke(_ token: String, now: Int64, in sql: any SQLDatabase) async throws {
        guard let stored = try await TokenStore.refreshToken(hash: Secrets.tokenHash(token), in: sql) else { return }
        try await TokenStore.revokeFamily(stored.familyID, now: now, in: sql)
    }
}
