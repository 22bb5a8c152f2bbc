public import Foundation
import JWTKit
public import ParleyCore
import ParleyStore
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

    /// A signed access token for `userID` in login session `sessionID` (its refresh-token family); without one (tools,
    /// tests) it ends only by expiring.
    public func accessToken(for userID: String, sessionID: String? = nil, now: Date = Date()) async throws -> String {
        // Whole seconds: NumericDate with a fraction is legal, but some verifiers refuse it.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        return try await self.signer.sign(
            AccessTokenClaims(userID: userID, sessionID: sessionID, issuedAt: now, lifetime: TimeInterval(self.accessTokenLifetime)),
            kid: JWKIdentifier(string: self.key.kid)
        )
    }

    /// A refresh token and the family (the login session) it belongs to.
    struct RefreshToken: Sendable {
        var token: String
        var family: String
    }

    /// Stores a new refresh token of `family` (a new family, a new login session, when nil) and returns it.
    func newRefreshToken(userID: String, family: String?, now: Int64, in sql: any SQLDatabase) async throws -> RefreshToken {
        let token = Secrets.refreshToken()
        let family = family ?? Identifier.make()
        try await TokenStore.insertRefreshToken(
            hash: Secrets.tokenHash(token),
            familyID: family,
            userID: userID,
            now: now,
            expiresAt: now + Int64(self.refreshTokenLifetime) * 1000,
            in: sql
        )
        return RefreshToken(token: token, family: family)
    }

    /// What presenting a refresh token leads to.
    enum Rotation {
        case rotated(userID: String, newToken: RefreshToken)
        case reused
        case invalid
    }

    /// Rotates `token`: marks it used and issues its successor; a token used before revokes its whole family.
    func rotate(_ token: String, now: Int64, in sql: any SQLDatabase) async throws -> Rotation {
        guard let stored = try await TokenStore.refreshToken(hash: Secrets.tokenHash(token), in: sql) else { return .invalid }
        if stored.revokedAt != nil { return .invalid }
        if stored.rotatedAt != nil {
            try await TokenStore.revokeFamily(of: stored, reason: .revoked, now: now, in: sql)
            return .reused
        }
        if stored.expiresAt <= now { return .invalid }
        // Marking it rotated is guarded: a concurrent rotation of the same token loses, and counts as reuse.
        guard try await TokenStore.markRotated(id: stored.id, now: now, in: sql) else {
            try await TokenStore.revokeFamily(of: stored, reason: .revoked, now: now, in: sql)
            return .reused
        }
        let successor = try await self.newRefreshToken(userID: stored.userID, family: stored.familyID, now: now, in: sql)
        return .rotated(userID: stored.userID, newToken: successor)
    }

    /// Ends the login session of `token` (logout), if it is one of ours.
    func revoke(_ token: String, now: Int64, in sql: any SQLDatabase) async throws {
        guard let stored = try await TokenStore.refreshToken(hash: Secrets.tokenHash(token), in: sql) else { return }
        try await TokenStore.revokeFamily(of: stored, reason: .loggedOut, now: now, in: sql)
    }
}
