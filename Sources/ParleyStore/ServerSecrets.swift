import SQLKit

/// Secrets every instance must share (the signing key when none is configured, the file URL key), kept in the database.
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
}

/// A fault of the storage itself, such as a row the transaction just wrote missing: a 500, never an answer of the contract.
public struct StoreError: Error, CustomStringConvertible {
    public let description: String

    /// A fault described by `description`.
    public init(_ description: String) {
        self.description = description
    }
}
