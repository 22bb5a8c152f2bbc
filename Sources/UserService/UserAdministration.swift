import Foundation
import ParleyCore
public import ParleyStore

/// Accounts made by an administrator, without the login mail: for load tests, demos and imports.
public struct UserAdministration: Sendable {
    let users: UserStore

    /// An account as `parley users create` reports it.
    public struct CreatedUser: Sendable {
        public var id: String
        public var email: String
        public var name: String
    }

    /// Works on `database`.
    public init(database: Database) {
        self.users = UserStore(database: database)
    }

    /// Creates `count` users named "`namePrefix` 1", "`namePrefix` 2"…, with unique addresses at example.invalid;
    /// `batch` is called with each batch once it is committed.
    public func createUsers(count: Int, namePrefix: String, batch: ([CreatedUser]) async throws -> Void) async throws {
        let prefix = try DisplayName.validate(namePrefix)
        guard prefix.count <= DisplayName.maxLength - 8 else {
            throw UserError.invalidName("The name prefix must be at most \(DisplayName.maxLength - 8) characters.")
        }
        // The address is made of the prefix's letters and digits and a tag of this run, so runs never collide.
        let local = String(prefix.lowercased().unicodeScalars.filter { ("a"..."z").contains($0) || ("0"..."9").contains($0) }.prefix(20))
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        var next = 1
        while next <= count {
            let size = min(500, count - next + 1)
            let users = (next..<next + size).map { index in
                CreatedUser(
                    id: Identifier.make(),
                    email: "\(local.isEmpty ? "user" : local).\(tag).\(index)@example.invalid",
                    name: "\(prefix) \(index)"
                )
            }
            try await self.users.insert(users.map { ($0.id, $0.email, $0.name) }, now: Timestamp.millis())
            try await batch(users)
            next += size
        }
    }

    /// Throws ``UserError/userNotFound`` unless every one of `ids` is a user.
    public func requireUsers(_ ids: [String]) async throws {
        let wanted = Set(ids)
        guard wanted.allSatisfy(Identifier.isValid), try await self.users.find(ids: Array(wanted)).count == wanted.count else {
            throw UserError.userNotFound
        }
    }
}
