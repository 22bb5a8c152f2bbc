import Foundation
import ParleyCore
import ParleyStore
import SQLKit

/// Accounts made by an administrator, without the login mail: for load tests, demos and imports.
public struct UserAdministration: Sendable {
    let database: Database

    /// An account as `parley users create` reports it.
    public struct CreatedUser: Sendable {
        public var id: String
        public var email: String
        public var name: String
    }

    /// Works on `database`.
    public init(database: Database) {
        self.database = database
    }

    /// Creates `count` users named "`namePrefix` 1", "`namePrefix` 2"…, with unique addresses at example.invalid;
    /// `batch` is called with each batch once it is committed.
    public func createUsers(count: Int, namePrefix: String, batch: ([CreatedUser]) async throws -> Void) async throws {
        let prefix = try DisplayName.validate(namePrefix)
        guard prefix.count <= DisplayName.maxLength - 8 else {
            throw APIError.badRequest("The name prefix must be at most \(DisplayName.maxLength - 8) characters.", code: "invalid_name")
        }
        // The address is made of the prefix's letters and digits and a tag of this run, so runs never collide.
        let local = String(prefix.lowercased().unicodeScalars.filter { ("a"..."z").contains($0) || ("0"..."9").contains($0) }.prefix(20))
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        var next = 1
        while next <= count {
            let size = min(500, count - next + 1)
            let users = (next..<next + size).map { index in
                CreatedUser(id: Identifier.make(), email: "\(local.isEmpty ? "user" : local).\(tag).\(index)@example.invalid", name: "\(prefix) \(index)")
            }
            let now = Timestamp.millis()
            try await self.database.transaction { sql in
                // One statement per batch: every statement costs far more than its row.
                let rows = users.map { user in
                    SQLQueryString("(\(bind: user.id), \(bind: user.email), \(bind: user.name), \(bind: user.name.lowercased()), \(bind: now), \(bind: now))")
                }
                try await sql.raw(
                    "INSERT INTO users (id, email, name, name_search, created_at, updated_at) VALUES \(SQLList(rows))"
                ).run()
            }
            try await batch(users)
            next += size
        }
    }
}
