import ParleyCore
public import SQLKit

/// The stored facts of an uploaded file (today always an image).
public struct FileRecord: Sendable, Equatable, Codable {
    public var id: String
    public var contentType: String
    public var size: Int64
    public var width: Int?
    public var height: Int?

    /// A file's facts as they are stored.
    public init(id: String, contentType: String, size: Int64, width: Int?, height: Int?) {
        self.id = id
        self.contentType = contentType
        self.size = size
        self.width = width
        self.height = height
    }
}

/// Uploaded files in the database (their bytes are in a blob store): the user service checks avatars against it, the
/// chat service stores images and ties each to the chat it was sent in.
public struct FileStore: Sendable {
    public let database: Database

    /// Uses `database`.
    public init(database: Database) {
        self.database = database
    }

    /// Records `file`, uploaded by `ownerID`, outside any chat so far.
    public func insert(_ file: FileRecord, ownerID: String, now: Int64) async throws {
        try await self.database.transaction { sql in
            try await sql.raw(
                """
                INSERT INTO files (id, owner_id, content_type, size, width, height, created_at)
                VALUES (\(bind: file.id), \(bind: ownerID), \(bind: file.contentType), \(bind: file.size), \(bind: file.width), \(bind: file.height),
                        \(bind: now))
                """
            ).run()
        }
    }

    /// The stored facts of file `id`.
    public func file(_ id: String) async throws -> FileRecord? {
        try await self.database.read { sql in
            try await sql.raw("SELECT id, content_type, size, width, height FROM files WHERE id = \(bind: id)").first().map { row in
                FileRecord(
                    id: try row.decode(column: "id", as: String.self),
                    contentType: try row.decode(column: "content_type", as: String.self),
                    size: try row.decode(column: "size", as: Int64.self),
                    width: try row.decode(column: "width", as: Int?.self),
                    height: try row.decode(column: "height", as: Int?.self)
                )
            }
        }
    }

    /// Whether `userID` uploaded file `id`, inside the caller's transaction `sql`.
    public static func isOwned(_ id: String, by userID: String, in sql: any SQLDatabase) async throws -> Bool {
        try await sql.raw("SELECT 1 AS one FROM files WHERE id = \(bind: id) AND owner_id = \(bind: userID)").first() != nil
    }

    /// Ties file `id` to the chat it was sent in, inside the caller's transaction `sql` (the message's).
    public static func attach(_ id: String, toChat chatID: String, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE files SET chat_id = \(bind: chatID) WHERE id = \(bind: id)").run()
    }

    /// Forgets file `id` inside the caller's transaction `sql` (its message was deleted); the caller erases the bytes
    /// once that transaction has committed.
    public static func forget(_ id: String, in sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM files WHERE id = \(bind: id)").run()
    }

    /// The chat file `id` was sent in, if any.
    public func chat(ofFile id: String) async throws -> String? {
        try await self.database.read { sql in
            try await sql.raw("SELECT chat_id FROM files WHERE id = \(bind: id)").first()?.decode(column: "chat_id", as: String?.self)
        }
    }
}
