public import Foundation
public import Hummingbird
public import JWTKit
import Logging

/// The claims of a Parley access token.
public struct AccessTokenClaims: JWTPayload, Equatable {
    /// The user id.
    public var sub: SubjectClaim
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim
    /// The login session (the refresh-token family) the token was issued in: its sockets end when that session does.
    public var sid: String?

    /// Creates claims for `userID` in login session `sessionID`, valid from `issuedAt` for `lifetime` seconds.
    public init(userID: String, sessionID: String?, issuedAt: Date, lifetime: TimeInterval) {
        self.sub = SubjectClaim(value: userID)
        self.iat = IssuedAtClaim(value: issuedAt)
        self.exp = ExpirationClaim(value: issuedAt.addingTimeInterval(lifetime))
        self.sid = sessionID
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try self.exp.verifyNotExpired()
    }
}

/// What a valid access token says.
public struct VerifiedAccessToken: Sendable, Equatable {
    /// The user id.
    public var userID: String
    /// The login session it was issued in; nil for a token issued before sessions were named.
    public var sessionID: String?
    /// When it expires.
    public var expiresAt: Date

    /// Creates a verified token's description.
    public init(userID: String, sessionID: String?, expiresAt: Date) {
        self.userID = userID
        self.sessionID = sessionID
        self.expiresAt = expiresAt
    }
}

/// Checks access tokens with public keys only, so a service that verifies cannot sign.
public protocol AccessTokenVerifying: Sendable {
    /// What a valid token says, or an ``APIError`` 401.
    func verify(token: String) async throws -> VerifiedAccessToken
}

extension AccessTokenVerifying {
    /// The user id of a valid token, or an ``APIError`` 401.
    public func userID(fromToken token: String) async throws -> String {
        try await self.verify(token: token).userID
    }
}

/// Verifies with a JWT key collection (the signer's own keys in-process, or keys read from a JWKS).
public struct JWTAccessTokenVerifier: AccessTokenVerifying {
    private let keys: JWTKeyCollection

    /// Verifies with `keys`.
    public init(keys: JWTKeyCollection) {
        self.keys = keys
    }

    public func verify(token: String) async throws -> VerifiedAccessToken {
        // Tokens are short; refuse a huge header before any parsing.
        guard token.utf8.count <= 4096, !token.isEmpty else { throw APIError.unauthorized("The access token is not valid.", code: "invalid_token") }
        do {
            let claims = try await self.keys.verify(token, as: AccessTokenClaims.self)
            guard Identifier.isValid(claims.sub.value), claims.sid.map(Identifier.isValid) ?? true else {
                throw APIError.unauthorized("The access token is not valid.", code: "invalid_token")
            }
            return VerifiedAccessToken(userID: claims.sub.value, sessionID: claims.sid, expiresAt: claims.exp.value)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw APIError.unauthorized("The access token has expired.", code: "token_expired")
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.unauthorized("The access token is not valid.", code: "invalid_token")
        }
    }
}

/// Requires `Authorization: Bearer <token>` and puts the user id into the context.
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = ParleyRequestContext
    private let verifier: any AccessTokenVerifying

    /// Authenticates with `verifier`.
    public init(verifier: any AccessTokenVerifying) {
        self.verifier = verifier
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { throw APIError.unauthorized() }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw APIError.unauthorized("Use `Authorization: Bearer <accessToken>`.", code: "invalid_token")
        }
        var context = context
        let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        let userID = try await self.verifier.userID(fromToken: token)
        context.userID = userID
        context.logger[metadataKey: "userId"] = .string(userID)
        return try await CallerToken.$current.withValue(token) {
            try await next(request, context)
        }
    }
}
