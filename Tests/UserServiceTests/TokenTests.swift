import Foundation
import JWTKit
import ParleyCore
import Testing

@testable import UserService

enum SigningKeyFixture {
    static let key = SigningKey(privateKey: try! EdDSA.PrivateKey(curve: .ed25519))
}

@Suite("Access tokens")
struct TokenTests {
    @Test("a token signed by the issuer verifies with the public key alone, and names its user")
    func roundTrip() async throws {
        let issuer = await TokenIssuer(key: SigningKeyFixture.key, accessTokenLifetime: 900, refreshTokenLifetime: 3600)
        let userID = Identifier.make()
        let token = try await issuer.accessToken(for: userID)
        #expect(try await issuer.verifier().userID(fromToken: token) == userID)
    }

    @Test("expired, tampered, foreign-key and alg:none tokens are refused")
    func refusals() async throws {
        let issuer = await TokenIssuer(key: SigningKeyFixture.key, accessTokenLifetime: 900, refreshTokenLifetime: 3600)
        let verifier = await issuer.verifier()
        let userID = Identifier.make()
        let expired = try await issuer.accessToken(for: userID, now: Date().addingTimeInterval(-1000))
        await #expect(throws: APIError.self) { try await verifier.userID(fromToken: expired) }

        let good = try await issuer.accessToken(for: userID)
        let parts = good.split(separator: ".").map(String.init)
        let otherPayload = Data(#"{"sub":"\#(Identifier.make())","exp":9999999999,"iat":1}"#.utf8).base64EncodedString()
            .replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        await #expect(throws: APIError.self) { try await verifier.userID(fromToken: parts[0] + "." + otherPayload + "." + parts[2]) }

        let noneHeader = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        await #expect(throws: APIError.self) { try await verifier.userID(fromToken: noneHeader + "." + parts[1] + ".") }

        let stranger = await TokenIssuer(
            key: SigningKey(privateKey: try EdDSA.PrivateKey(curve: .ed25519)),
            accessTokenLifetime: 900,
            refreshTokenLifetime: 3600
        )
        let foreign = try await stranger.accessToken(for: userID)
        await #expect(throws: APIError.self) { try await verifier.userID(fromToken: foreign) }
        await #expect(throws: APIError.self) { try await verifier.userID(fromToken: "garbage") }
    }

    @Test("the JWKS publishes the key under the token's kid")
    func jwks() async throws {
        let json = SigningKeyFixture.key.jwksJSON
        let keys = try await JWTKeyCollection().add(jwksJSON: json)
        let issuer = await TokenIssuer(key: SigningKeyFixture.key, accessTokenLifetime: 900, refreshTokenLifetime: 3600)
        let token = try await issuer.accessToken(for: Identifier.make())
        _ = try await keys.verify(token, as: AccessTokenClaims.self)
        #expect(json.contains(#""kid":"\#(SigningKeyFixture.key.kid)""#))
    }
}
