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

    /// Creates claims for `userID` valid from `issuedAt` for `lifetime` seconds.
    public init(userID: String, issuedAt: Date, lifetime: TimeInterval) {
        self.sub = SubjectClaim(value: userID)
        self.iat = IssuedAtClaim(value: issuedAt)
        self.exp = ExpirationClaim(value: issuedAt.addingTimeInterval(lifetime))
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try self.exp.verifyNotExpired()
    }
}

/// Checks access tokens with public keys only, so a service that verifies cannot sign.
public protocol AccessTokenVerifying: Sendable {
    /// The user id of a valid token, or an ``APIError`` 401.
    func userID(fromToken token: String) async throws -> String
}

/// Verifies with a JWT key collection (the signer's own keys in-process, or keys read from a JWKS).
public struct JWTAccessTokenVerifier: AccessTokenVerifying {
    private let keys: JWTKeyCollection

    /// Verifies with `keys`.
    public init(keys: JWTKeyCollection) {
        self.keys = keys
    }

    public func userID(fromToken token: String) async throws -> String {
        // Tokens are short; refuse a huge header before any parsing.
        guard token.utf8.count <= 4096, !token.isEmpty else { throw APIError.unauthorized("The access token is not valid.", code: "invalid_token") }
        do {
            let claims = try await self.keys.verify(token, as: AccessTokenClaims.self)
            guard Identifier.isValid(claims.sub.value) else { throw APIError.unauthorized("The access token is not valid.", code: "invalid_token") }
            return claims.sub.value
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
