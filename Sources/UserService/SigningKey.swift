import Crypto
import Foundation
import JWTKit
import ParleyCore

/// The Ed25519 key that signs access tokens, its key id, and the JWKS that publishes its public half.
public struct SigningKey: Sendable {
    public let privateKey: EdDSA.PrivateKey
    /// Derived from the public key, so every instance with the same key names it the same.
    public let kid: String

    /// Wraps `privateKey`.
    public init(privateKey: EdDSA.PrivateKey) {
        self.privateKey = privateKey
        let digest = SHA256.hash(data: privateKey.publicKey.rawRepresentation)
        self.kid = String(Base64URL.encode(Data(digest)).prefix(16))
    }

    /// The key from `PARLEY_JWT_PRIVATE_KEY`, else from the data folder, else a new one written there (mode 0600).
    public static func load(pem: String?, dataDirectory: String) throws -> SigningKey {
        if let pem {
            // Environment variables often carry "\n" literally.
            let text = pem.contains("\\n") ? pem.replacingOccurrences(of: "\\n", with: "\n") : pem
            guard let key = try? EdDSA.PrivateKey(pem: text) else {
                throw ConfigurationError("PARLEY_JWT_PRIVATE_KEY", "must be a PEM-encoded Ed25519 private key (openssl genpkey -algorithm ed25519)")
            }
            return SigningKey(privateKey: key)
        }
        let path = (dataDirectory as NSString).appendingPathComponent("jwt-ed25519.pem")
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            guard let key = try? EdDSA.PrivateKey(pem: text) else {
                throw ConfigurationError("PARLEY_DATA_DIR", "\(path) is not a PEM-encoded Ed25519 private key; remove it to generate a new one")
            }
            return SigningKey(privateKey: key)
        }
        let key = try EdDSA.PrivateKey(curve: .ed25519)
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: path, contents: Data(key.pemRepresentation.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ConfigurationError("PARLEY_DATA_DIR", "cannot write \(path)")
            }
        }
        return SigningKey(privateKey: key)
    }

    /// The JWK set with this key's public half.
    public var jwksJSON: String {
        let x = Base64URL.encode(self.privateKey.publicKey.rawRepresentation)
        return #"{"keys":[{"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":"# + JSONText.quote(self.kid) + #","x":"# + JSONText.quote(x) + "}]}"
    }

    /// A secret for hashing login codes, derived from the private key so every user instance agrees on it.
    var codePepper: SymmetricKey {
        SymmetricKey(data: SHA256.hash(data: Data("parley-login-code".utf8) + self.privateKey.rawRepresentation))
    }
}
