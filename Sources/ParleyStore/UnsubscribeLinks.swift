public import Crypto
import Foundation
public import ParleyCore

/// Signs the one-click unsubscribe links of missed-message mail (RFC 8058): a link names its user and carries an HMAC of
/// that id, so whoever holds the mail, and only they, can turn that user's mail off without signing in. Links do not
/// expire (a mail read a month later still unsubscribes), and they do nothing but turn the setting off.
public struct UnsubscribeLinks: Sendable {
    let key: SymmetricKey
    let baseURL: String

    public init(key: SymmetricKey, baseURL: String) {
        self.key = key
        self.baseURL = baseURL
    }

    /// The links with the database's shared secret (created once, the same for every instance).
    public static func load(database: Database, baseURL: String) async throws -> UnsubscribeLinks {
        let key = try await ServerSecrets(database: database).symmetricKey(named: "unsubscribe_key")
        return UnsubscribeLinks(key: key, baseURL: baseURL)
    }

    /// The link that turns `userID`'s missed-message mail off.
    public func url(for userID: String) -> String {
        "\(self.baseURL)/api/v1/unsubscribe?user=\(userID)&sig=\(self.signature(userID: userID))"
    }

    /// Whether `signature` is ours for `userID`.
    public func verify(userID: String, signature: String) -> Bool {
        ConstantTime.equals(self.signature(userID: userID), signature)
    }

    func signature(userID: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("unsubscribe.\(userID)".utf8), using: self.key)
        return Base64URL.encode(Data(mac))
    }
}
