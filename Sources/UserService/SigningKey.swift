import Crypto
import Foundation
public import JWTKit
import ParleyCore
public import ParleyStore

/// A public key that verifies access tokens, with the key id tokens name it by.
public struct VerificationKey: Sendable {
    public let publicKey: EdDSA.PublicKey
    /// Derived from the public key, so every instance names the same key the same.
    public let kid: String

    /// Wraps `publicKey`.
    public init(publicKey: EdDSA.PublicKey) {
        self.publicKey = publicKey
        let digest = SHA256.hash(data: publicKey.rawRepresentation)
        self.kid = String(Base64URL.encode(Data(digest)).prefix(16))
    }

    /// The key as a JWK.
    var jwkJSON: String {
        let x = Base64URL.encode(self.publicKey.rawRepresentation)
        return #"{"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":"# + JSONText.quote(self.kid) + #","x":"# + JSONText.quote(x) + "}"
    }
}

/// The Ed25519 key that signs access tokens, the retired key still accepted during a rotation, and the JWKS of both.
public struct SigningKey: Sendable {
    public let privateKey: EdDSA.PrivateKey
    public let kid: String
    /// A previous signing key: its tokens stay valid until they expire, and JWKS keeps listing it for other services.
    public let retired: VerificationKey?

    /// Wraps `privateKey`, with the `retired` key still accepted.
    public init(privateKey: EdDSA.PrivateKey, retired: VerificationKey? = nil) {
        self.privateKey = privateKey
        let kid = VerificationKey(publicKey: privateKey.publicKey).kid
        self.kid = kid
        self.retired = retired.flatMap { $0.kid == kid ? nil : $0 }
    }

    /// The keys that verify tokens: the signing key's public half first.
    public var verificationKeys: [VerificationKey] {
        [VerificationKey(publicKey: self.privateKey.publicKey)] + (self.retired.map { [$0] } ?? [])
    }

    /// The JWK set with every key that verifies tokens.
    public var jwksJSON: String {
        #"{"keys":["# + self.verificationKeys.map(\.jwkJSON).joined(separator: ",") + "]}"
    }

    /// A secret for hashing login codes, derived from the private key so every user instance agrees on it.
    var codePepper: SymmetricKey {
        SymmetricKey(data: SHA256.hash(data: Data("parley-login-code".utf8) + self.privateKey.rawRepresentation))
    }
}

/// The keys the settings name, checked before anything is opened.
public struct ConfiguredSigningKeys: Sendable {
    /// `PARLEY_JWT_PRIVATE_KEY`, or nil to use the key kept in the database.
    public let current: EdDSA.PrivateKey?
    /// `PARLEY_JWT_PREVIOUS_KEY`: a private or public PEM.
    public let previous: VerificationKey?

    /// Parses the PEM texts of the settings; a bad one is a ``ConfigurationError`` naming it.
    public init(currentPEM: String?, previousPEM: String?) throws {
        self.current = try currentPEM.map { pem in
            guard let key = try? EdDSA.PrivateKey(pem: Self.unescaped(pem)) else {
                throw ConfigurationError("PARLEY_JWT_PRIVATE_KEY", "must be a PEM-encoded Ed25519 private key (openssl genpkey -algorithm ed25519)")
            }
            return key
        }
        self.previous = try previousPEM.map { pem in
            let text = Self.unescaped(pem)
            if let key = try? EdDSA.PrivateKey(pem: text) { return VerificationKey(publicKey: key.publicKey) }
            if let key = try? EdDSA.PublicKey(pem: text) { return VerificationKey(publicKey: key) }
            throw ConfigurationError("PARLEY_JWT_PREVIOUS_KEY", "must be a PEM-encoded Ed25519 private or public key")
        }
    }

    /// Environment variables often carry "\n" literally.
    static func unescaped(_ pem: String) -> String {
        pem.contains("\\n") ? pem.replacingOccurrences(of: "\\n", with: "\n") : pem
    }

    /// The signing key: the configured one, else the one kept in the database, created there once by whichever instance
    /// starts first (a key file from an older data folder is adopted), so every user instance signs with the same key.
    public func load(database: Database, dataDirectory: String) async throws -> SigningKey {
        if let current { return SigningKey(privateKey: current, retired: self.previous) }
        let legacyPath = (dataDirectory as NSString).appendingPathComponent("jwt-ed25519.pem")
        let candidate: EdDSA.PrivateKey
        if let text = try? String(contentsOfFile: legacyPath, encoding: .utf8), let key = try? EdDSA.PrivateKey(pem: text) {
            candidate = key
        } else {
            candidate = try EdDSA.PrivateKey(curve: .ed25519)
        }
        let pem = try await ServerSecrets(database: database).value(named: "jwt_ed25519", storingIfAbsent: candidate.pemRepresentation)
        guard let key = try? EdDSA.PrivateKey(pem: pem) else {
            throw ConfigurationError(
                "PARLEY_JWT_PRIVATE_KEY",
                "the key kept in the database (server_secrets jwt_ed25519) is not an Ed25519 private key"
            )
        }
        return SigningKey(privateKey: key, retired: self.previous)
    }
}
