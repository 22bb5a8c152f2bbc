public import Crypto
import Foundation
public import ParleyCore

/// Signs file URLs so `<img src>` works without headers; a URL is handed only to members of the file's chat and expires.
public struct FileURLSigner: Sendable {
    let key: SymmetricKey
    let baseURL: String
    /// URLs stay the same for a 12-hour period, so browsers can cache them, and live 12 to 24 hours.
    static let period: Int64 = 12 * 3600

    public init(key: SymmetricKey, baseURL: String) {
        self.key = key
        self.baseURL = baseURL
    }

    /// The signer with the database's shared secret (created once, the same for every instance).
    public static func load(database: Database, baseURL: String) async throws -> FileURLSigner {
        let key = try await ServerSecrets(database: database).symmetricKey(named: "file_url_key")
        return FileURLSigner(key: key, baseURL: baseURL)
    }

    /// A signed URL for `fileID`.
    public func url(forFile fileID: String, now: Int64 = Timestamp.millis() / 1000) -> String {
        let expires = (now / Self.period + 2) * Self.period
        return "\(self.baseURL)/api/v1/files/\(fileID)?exp=\(expires)&sig=\(self.signature(fileID: fileID, expires: expires))"
    }

    /// Whether `signature` is ours for `fileID` and `expires`, and not expired.
    public func verify(fileID: String, expires: Int64, signature: String, now: Int64 = Timestamp.millis() / 1000) -> Bool {
        guard expires > now else { return false }
        return ConstantTime.equals(self.signature(fileID: fileID, expires: expires), signature)
    }

    func signature(fileID: String, expires: Int64) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(fileID).\(expires)".utf8), using: self.key)
        return Base64URL.encode(Data(mac))
    }
}
