import Crypto
import Foundation
import ParleyCore

/// Random secrets and their stored forms.
enum Secrets {
    /// A six-digit login code, uniform over 000000–999999, from the system's cryptographic generator.
    static func loginCode() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = Int.random(in: 0..<1_000_000, using: &generator)
        let digits = String(value)
        return String(repeating: "0", count: 6 - digits.count) + digits
    }

    /// An opaque refresh token: 32 random bytes, base64url.
    static func refreshToken() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = generator.next() }
        return Base64URL.encode(Data(bytes))
    }

    /// The stored form of a refresh token: SHA-256, hex.
    static func tokenHash(_ token: String) -> String {
        hex(SHA256.hash(data: Data(token.utf8)))
    }

    /// The stored form of a login code: HMAC-SHA-256 over email and code with a server secret, hex.
    static func codeHash(email: String, code: String, pepper: SymmetricKey) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Data("\(email):\(code)".utf8), using: pepper))
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}
