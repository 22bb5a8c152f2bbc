public import Crypto
import Foundation
import SQLKit

/// Secrets every instance must share (the signing key when none is configured, the keys of signed links and service
/// credentials), kept in the database, so every backup has them.
public struct ServerSecrets: Sendable {
    public let database: Database

    /// Uses `database`.
    public init(database: Database) {
        self.database = database
    }

    /// The secret called `name`: stored as `candidate` by whichever instance asks first, then the same for every one.
    public func value(named name: String, storingIfAbsent candidate: String) async throws -> String {
        try await self.database.transaction { sql in
            try await sql.raw(
                "INSERT INTO server_secrets (name, value) VALUES (\(bind: name), \(bind: candidate)) ON CONFLICT (name) DO NOTHING"
            ).run()
            guard let row = try await sql.raw("SELECT value FROM server_secrets WHERE name = \(bind: name)").first() else {
                throw StoreError("the secret \(name) was stored but cannot be read back")
            }
            return try row.decode(column: "value", as: String.self)
        }
    }

    /// The 256-bit key called `name`: made at random by whichever instance asks first, then the same for every one.
    public func symmetricKey(named name: String) async throws -> SymmetricKey {
        let candidate = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
        let stored = try await self.value(named: name, storingIfAbsent: candidate)
        guard let bytes = Data(base64Encoded: stored), bytes.count == 32 else {
            throw StoreError("the secret \(name) is not a base64 256-bit key")
        }
        return SymmetricKey(data: bytes)
    }
}

/// A fault of the storage itself, such as a row the transaction just wrote missing: a 500, never an answer of the contract.
public struct StoreError: Error, CustomStringConvertible {
    public let description: String

    /// A fault described by `description`.
    public init(_ description: String) {
        self.description = description
    }
}
