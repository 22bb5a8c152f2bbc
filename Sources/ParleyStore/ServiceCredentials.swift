public import Crypto
import Foundation
public import ParleyCore

/// What one Parley service shows another on the routes that only services call (`/internal/…`, which nginx does not
/// publish): a token that says until when it is good, and an HMAC of that with a secret every instance shares (kept in
/// the database, as the other shared secrets are). A caller makes a fresh one for each request; each is good for a
/// minute, so one seen on the internal network is of no use for long, and no secret is ever configured by hand.
public struct ServiceCredentials: Sendable {
    let key: SymmetricKey

    /// The `Authorization` scheme the token travels in.
    public static let scheme = "ParleyService"
    /// How long a token is good for, in milliseconds.
    public static let lifetime: Int64 = 60_000

    public init(key: SymmetricKey) {
        self.key = key
    }

    /// The credentials with the database's shared secret (created once, the same for every instance).
    public static func load(database: Database) async throws -> ServiceCredentials {
        let key = try await ServerSecrets(database: database).symmetricKey(named: "service_key")
        return ServiceCredentials(key: key)
    }

    /// A token made at `now` (milliseconds): `<expiry>.<signature>`.
    public func token(now: Int64 = Timestamp.millis()) -> String {
        let expires = now + Self.lifetime
        return "\(expires).\(self.signature(expires: expires))"
    }

    /// The `Authorization` header's value for a request made at `now`.
    public func authorization(now: Int64 = Timestamp.millis()) -> String {
        "\(Self.scheme) \(self.token(now: now))"
    }

    /// Whether `header`, an `Authorization` header's value, carries a token of ours that is good at `now`: signed with
    /// the shared secret, not expired, and not claiming more than a lifetime ahead.
    public func verify(authorization header: String?, now: Int64 = Timestamp.millis()) -> Bool {
        guard let header, header.hasPrefix(Self.scheme + " ") else { return false }
        let token = header.dropFirst(Self.scheme.count + 1)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 16, parts[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let expires = Int64(parts[0]), expires > now, expires <= now + Self.lifetime
        else { return false }
        return ConstantTime.equals(self.signature(expires: expires), String(parts[1]))
    }

    func signature(expires: Int64) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("service.\(expires)".utf8), using: self.key)
        return Base64URL.encode(Data(mac))
    }
}
