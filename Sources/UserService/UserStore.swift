import Foundation
import ParleyCore
import ParleyStore
import SQLKit

/// A user row.
struct UserRecord: Sendable {
    var id: String
    var email: String
    var name: String
    var avatarFileID: String?
    var emailNotifications: Bool
    var allowGroupAdds: Bool
    var createdAt: Int64

    func user(signer: FileURLSigner) -> User {
        User(
            id: self.id,
            email: self.email,
            name: self.name,
            avatarUrl: self.avatarFileID.map { signer.url(forFile: $0) },
            emailNotifications: self.emailNotifications,
            allowGroupAdds: self.allowGroupAdds,
            createdAt: Timestamp.iso8601(millis: self.createdAt)
        )
    }

    func publicUser(signer: FileURLSigner) -> PublicUser {
        PublicUser(id: self.id, name: self.name, avatarUrl: self.avatarFileID.map { signer.url(forFile: $0) })
    }

    init(row: any SQLRow) throws {
        self.id = try row.decode(column: "id", as: String.self)
        self.email = try row.decode(column: "email", as: String.self)
        self.name = try row.decode(column: "name", as: String.self)
        self.avatarFileID = try row.decode(column: "avatar_file_id", as: String?.self)
        self.emailNotifications = try row.decode(column: "email_notifications", as: Bool.self)
        self.allowGroupAdds = try row.decode(column: "allow_group_adds", as: Bool.self)
        self.createdAt = try row.decode(column: "created_at", as: Int64.self)
    }
}

/// Users in the database: every statement on the `users` table. Methods open their own read or transaction; the
/// `in sql:` ones run inside a caller's transaction, for the login flow that writes users with codes and tokens.
struct UserStore: Sendable {
    let database: Database

    static let columns: SQLQueryString = "id, email, name, avatar_file_id, email_notifications, allow_group_adds, created_at"

    /// The user with `id`.
    func find(id: String) async throws -> UserRecord? {
        try await self.database.read { sql in try await Self.find(id: id, in: sql) }
    }

    /// Those of `ids` that exist.
    func find(ids: [String]) async throws -> [UserRecord] {
        guard !ids.isEmpty else { return [] }
        return try await self.database.read { sql in
            try await sql.raw("SELECT \(Self.columns) FROM users WHERE id IN (\(binds: ids))").all().map(UserRecord.init(row:))
        }
    }

    /// Users whose name contains `query` (case-insensitive), ordered by name, after the keyset `cursor`.
    func search(query: String, after cursor: UserCursor?, limit: Int) async throws -> [UserRecord] {
        let pattern = "%" + Self.escapeLike(query.lowercased()) + "%"
        var statement = SQLQueryString("SELECT \(Self.columns), name_search FROM users WHERE name_search LIKE \(bind: pattern) ESCAPE '!'")
        if let cursor {
            statement = SQLQueryString(
                "\(statement) AND (name_search > \(bind: cursor.name) OR (name_search = \(bind: cursor.name) AND id > \(bind: cursor.id)))"
            )
        }
        statement = SQLQueryString("\(statement) ORDER BY name_search, id LIMIT \(bind: limit)")
        return try await self.database.read { sql in try await sql.raw(statement).all().map(UserRecord.init(row:)) }
    }

    /// Creates `users` in one transaction of one statement: every statement costs far more than its row.
    func insert(_ users: [(id: String, email: String, name: String)], now: Int64) async throws {
        guard !users.isEmpty else { return }
        let rows = users.map { user in
            SQLQueryString("(\(bind: user.id), \(bind: user.email), \(bind: user.name), \(bind: user.name.lowercased()), \(bind: now), \(bind: now))")
        }
        try await self.database.transaction { sql in
            try await sql.raw("INSERT INTO users (id, email, name, name_search, created_at, updated_at) VALUES \(SQLList(rows))").run()
        }
    }

    static func find(id: String, in sql: any SQLDatabase) async throws -> UserRecord? {
        try await sql.raw("SELECT \(Self.columns) FROM users WHERE id = \(bind: id)").first().map(UserRecord.init(row:))
    }

    static func find(email: String, in sql: any SQLDatabase) async throws -> UserRecord? {
        try await sql.raw("SELECT \(Self.columns) FROM users WHERE email = \(bind: email)").first().map(UserRecord.init(row:))
    }

    /// The user with `email`, created with the default name when there is none yet.
    static func findOrCreate(email: String, now: Int64, in sql: any SQLDatabase) async throws -> UserRecord {
        if let user = try await Self.find(email: email, in: sql) { return user }
        let name = DisplayName.fromEmail(email)
        try await sql.raw(
            """
            INSERT INTO users (id, email, name, name_search, created_at, updated_at)
            VALUES (\(bind: Identifier.make()), \(bind: email), \(bind: name), \(bind: name.lowercased()), \(bind: now), \(bind: now))
            ON CONFLICT (email) DO NOTHING
            """
        ).run()
        guard let user = try await Self.find(email: email, in: sql) else { throw StoreError("the user just created for a sign-in is missing") }
        return user
    }

    static func updateName(id: String, name: String, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw(
            "UPDATE users SET name = \(bind: name), name_search = \(bind: name.lowercased()), updated_at = \(bind: now) WHERE id = \(bind: id)"
        ).run()
    }

    static func updateEmailNotifications(id: String, enabled: Bool, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE users SET email_notifications = \(bind: enabled), updated_at = \(bind: now) WHERE id = \(bind: id)").run()
    }

    static func updateAllowGroupAdds(id: String, allowed: Bool, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE users SET allow_group_adds = \(bind: allowed), updated_at = \(bind: now) WHERE id = \(bind: id)").run()
    }

    /// Those of `ids` who turned group adds off.
    static func refusingGroupAdds(among ids: [String], in sql: any SQLDatabase) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        return Set(
            try await sql.raw("SELECT id FROM users WHERE id IN (\(binds: ids)) AND NOT allow_group_adds").all().map {
                try $0.decode(column: "id", as: String.self)
            }
        )
    }

    /// Sets or (with nil) removes the avatar of user `id`.
    static func updateAvatar(id: String, fileID: String?, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE users SET avatar_file_id = \(bind: fileID), updated_at = \(bind: now) WHERE id = \(bind: id)").run()
    }

    static func escapeLike(_ text: String) -> String {
        var out = ""
        for character in text {
            if character == "%" || character == "_" || character == "!" { out.append("!") }
            out.append(character)
        }
        return out
    }
}

/// The position after the last user of a page: its search name and id.
struct UserCursor: Codable {
    var name: String
    var id: String
}
