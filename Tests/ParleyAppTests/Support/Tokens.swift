import Crypto
import Foundation
import Testing

/// An Ed25519 signing key a test configures as `PARLEY_JWT_PRIVATE_KEY`, so that it can mint and forge access tokens
/// the way tests/e2e/harness.py's `sign_jwt` does.
struct TestSigningKey: Sendable {
    private let seed: Data

    init() {
        self.seed = Curve25519.Signing.PrivateKey().rawRepresentation
    }

    private var key: Curve25519.Signing.PrivateKey {
        // The seed came from a key, so it is one.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: self.seed)
    }

    /// The key as a PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes).
    var pem: String {
        // PKCS#8 for Ed25519 is a fixed prefix and the 32-byte seed (RFC 8410).
        let der: [UInt8] =
            [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
            + Array(self.key.rawRepresentation)
        return "-----BEGIN PRIVATE KEY-----\n\(Data(der).base64EncodedString())\n-----END PRIVATE KEY-----\n"
    }

    /// The public key as a SubjectPublicKeyInfo PEM.
    var publicPEM: String {
        let der: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00] + Array(self.key.publicKey.rawRepresentation)
        return "-----BEGIN PUBLIC KEY-----\n\(Data(der).base64EncodedString())\n-----END PUBLIC KEY-----\n"
    }

    /// A token with `header` (its `alg` set to EdDSA) and `payload`, signed with this key.
    func sign(header: [String: Any], payload: [String: Any]) throws -> String {
        var header = header
        header["alg"] = "EdDSA"
        let input = "\(CompactJWT.segment(header)).\(CompactJWT.segment(payload))"
        return input + "." + CompactJWT.base64URL(try self.key.signature(for: Data(input.utf8)))
    }
}

/// The parts of a compact JWS.
struct CompactJWT {
    var header: [String: Any]
    var payload: [String: Any]
    var segments: [String]

    /// Splits and decodes `token`.
    init(_ token: String) throws {
        self.segments = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        try #require(self.segments.count == 3, "not a CompactJWT: \(token)")
        self.header = try #require(try JSONSerialization.jsonObject(with: Self.decode(self.segments[0])) as? [String: Any])
        self.payload = try #require(try JSONSerialization.jsonObject(with: Self.decode(self.segments[1])) as? [String: Any])
    }

    /// The header without its `alg`, to sign again.
    var headerWithoutAlgorithm: [String: Any] {
        self.header.filter { $0.key != "alg" }
    }

    static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ segment: String) throws -> Data {
        var text = segment.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        return try #require(Data(base64Encoded: text), "not base64url: \(segment)")
    }

    static func segment(_ value: [String: Any]) -> String {
        Self.base64URL(Data(jsonText(value).utf8))
    }

    /// The forgeries of `genuine` the server must refuse, by name (test_login.py's `forged_tokens`), with the code
    /// each is answered with.
    static func forgeries(of genuine: String, key: TestSigningKey) throws -> [(name: String, token: String, code: String)] {
        let token = try CompactJWT(genuine)
        let now = Int(Date().timeIntervalSince1970)
        var expired = token.payload
        expired["iat"] = now - 1000
        expired["exp"] = now - 100
        var tampered = token.payload
        tampered["sub"] = UUID().uuidString.lowercased()
        let kid = try #require(token.header["kid"] as? String)
        let noneHeader = Self.base64URL(Data(#"{"alg":"none","typ":"CompactJWT","kid":"\#(kid)"}"#.utf8))
        var hsHeader = token.headerWithoutAlgorithm
        hsHeader["alg"] = "HS256"
        let hsInput = "\(Self.segment(hsHeader)).\(Self.segment(token.payload))"
        let mac = HMAC<SHA256>.authenticationCode(for: Data(hsInput.utf8), using: SymmetricKey(data: Data(key.publicPEM.utf8)))
        return [
            ("garbage", "garbage", "invalid_token"),
            ("two-segments", token.segments[0] + "." + token.segments[1], "invalid_token"),
            ("expired", try key.sign(header: token.headerWithoutAlgorithm, payload: expired), "token_expired"),
            ("tampered", "\(token.segments[0]).\(Self.segment(tampered)).\(token.segments[2])", "invalid_token"),
            ("alg-none", "\(noneHeader).\(token.segments[1]).", "invalid_token"),
            ("other-key", try TestSigningKey().sign(header: token.headerWithoutAlgorithm, payload: token.payload), "invalid_token"),
            ("hs256-with-public-key", "\(hsInput).\(Self.base64URL(Data(mac)))", "invalid_token"),
        ]
    }
}
