import ParleyCore
public import SQLKit

/// The stored facts of an uploaded file: an image, a file of any other kind, or an image's thumbnail.
public struct FileRecord: Sendable, Equatable, Codable {
    public var id: String
    public var contentType: String
    public var size: Int64
    public var width: Int?
    public var height: Int?
    /// ``Kind/image`` when absent (records written before files of other kinds existed).
    public var kind: Kind?
    /// The uploader's name for it, sanitised (see `FileName`); nil when the upload had none.
    public var name: String?
    /// The id of the image's thumbnail, when one was made.
    public var thumbnailID: String?

    /// What a file is, and so how it is served.
    public enum Kind: String, Sendable, Codable {
        /// An image checked by its bytes: shown inline.
        case image
        /// Anything else: always downloaded as an attachment, never rendered by the browser.
        case file
        /// A small preview of an image, made by the server: shown inline.
        case thumbnail
    }

    /// A file's facts as they are stored.
    public init(
        id: String,
        contentType: String,
        size: Int64,
        width: Int?,
        height: Int?,
        kind: Kind = .image,
        name: String? = nil,
        thumbnailID: String? = nil
    ) {
        self.id = id
        self.contentType = contentType
        self.size = size
        self.width = width
        self.height = height
        self.kind = kind
        self.name = name
        self.thumbnailID = thumbnailID
    }

    /// Whether a browser may show it in place (an image or a thumbnail) rather than download it.
    public var isInline: Bool { (self.kind ?? .image) != .file }
}

/// Uploaded files in the database (their bytes are in a blob store): the user service checks avatars against it, the
/// chat service stores images and other files and ties each to the chat it was sent in.
public struct FileStore: Sendable {
    public let database: Database

    /// Uses `database`.
    public init(database: Database) {
        self.database = database
    }

    /// Records `file`, uploaded by `ownerID`, outside any chat so far; with its `thumbnail` (made from it) in the same
    /// transaction.
    public func insert(_ file: FileRecord, thumbnail: FileRecord? = nil, ownerID: String, now: Int64) async throws {
        try await self.database.transaction { sql in
            try await Self.insert(file, parentID: nil, ownerID: ownerID, now: now, in: sql)
            if let thumbnail { try await Self.insert(thumbnail, parentID: file.id, ownerID: ownerID, now: now, in: sql) }
        }
    }

    private static func insert(_ file: FileRecord, parentID: String?, ownerID: String, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw(
            """
            INSERT INTO files (id, owner_id, content_type, size, width, height, kind, name, parent_id, created_at)
            VALUES (\(bind: file.id), \(bind: ownerID), \(bind: file.contentType), \(bind: file.size), \(bind: file.width), \(bind: file.height),
                    \(bind: (file.kind ?? .image).rawValue), \(bind: file.name), \(bind: parentID), \(bind: now))
            """
        ).run()
    }

    /// The stored facts of file `id`.
    public func file(_ id: String) async throws -> FileRecord? {
        try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT f.id, f.content_type, f.size, f.width, f.height, f.kind, f.name, t.id AS thumbnail_id
                FROM files f LEFT JOIN files t ON t.parent_id = f.id WHERE f.id = \(bind: id)
                """
            ).first().map { row in
                FileRecord(
                    id: try row.decode(column: "id", as: String.self),
                    contentType: try row.decode(column: "content_type", as: String.self),
                    size: try row.decode(column: "size", as: Int64.self),
                    width: try row.decode(column: "width", as: Int?.self),
                    height: try row.decode(column: "height", as: Int?.self),
                    kind: FileRecord.Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .file,
                    name: try row.decode(column: "name", as: String?.self),
                    thumbnailID: try row.decode(column: "thumbnail_id", as: String?.self)
                )
            }
        }
    }

    /// Makes file `id` the avatar of `userID`, inside the caller's transaction `sql`; false when `userID` did not upload
    /// it (or it is gone). An avatar is never collected as an unclaimed upload.
    public static func claimAsAvatar(_ id: String, by userID: String, now: Int64, in sql: any SQLDatabase) async throws -> Bool {
        // One statement: the sweep's DELETE and this UPDATE lock the same row, so a file is either kept or gone.
        try await sql.raw(
            "UPDATE files SET avatar_since = \(bind: now) WHERE id = \(bind: id) AND owner_id = \(bind: userID) AND kind = 'image' RETURNING id"
        ).first() != nil
    }

    /// File `id` is no longer an avatar (its owner chose another, or none), inside the caller's transaction `sql`: the
    /// next sweep collects it, unless a message carries it.
    public static func releaseAvatar(_ id: String, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE files SET avatar_since = NULL WHERE id = \(bind: id)").run()
    }

    /// The bytes `ownerID` stores: every file they uploaded that is still there (deleted messages' files are gone).
    public func usage(of ownerID: String) async throws -> Int64 {
        try await self.database.read { sql in
            try await sql.raw("SELECT CAST(coalesce(sum(size), 0) AS BIGINT) AS used FROM files WHERE owner_id = \(bind: ownerID)").first()?.decode(
                column: "used",
                as: Int64.self
            ) ?? 0
        }
    }

    /// Forgets at most `limit` uploads that no message carries and no one has as avatar, uploaded before `cutoff`
    /// (milliseconds), with their thumbnails; returns their ids, whose bytes the caller erases.
    public func forgetUnclaimed(before cutoff: Int64, limit: Int) async throws -> [String] {
        try await self.database.transaction { sql in
            // The conditions are repeated outside the subquery: PostgreSQL checks them again on a row another
            // transaction has just changed (a message carrying it, an avatar), and then leaves that row alone.
            // A thumbnail is never unclaimed on its own: it goes with its image.
            let ids = try await sql.raw(
                """
                DELETE FROM files WHERE chat_id IS NULL AND avatar_since IS NULL AND parent_id IS NULL AND id IN (
                    SELECT id FROM files WHERE chat_id IS NULL AND avatar_since IS NULL AND parent_id IS NULL AND created_at < \(bind: cutoff)
                    ORDER BY created_at LIMIT \(bind: limit)
                ) RETURNING id
                """
            ).all().map { try $0.decode(column: "id", as: String.self) }
            guard !ids.isEmpty else { return [] }
            let thumbnails = try await sql.raw(
                "DELETE FROM files WHERE parent_id IN (\(SQLList(ids.map { SQLBind($0) }))) RETURNING id"
            ).all().map { try $0.decode(column: "id", as: String.self) }
            return ids + thumbnails
        }
    }

    /// Those of `ids` that have a row.
    public func existing(_ ids: [String]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        return try await self.database.read { sql in
            Set(
                try await sql.raw("SELECT id FROM files WHERE id IN (\(SQLList(ids.map { SQLBind($0) })))").all().map {
                    try $0.decode(column: "id", as: String.self)
                }
            )
        }
    }

    /// Ties file `id` (and its thumbnail) to the chat it was sent in, inside the caller's transaction `sql` (the message's).
    public static func attach(_ id: String, toChat chatID: String, in sql: any SQLDatabase) async throws {
        try await sql.raw("UPDATE files SET chat_id = \(bind: chatID) WHERE id = \(bind: id) OR parent_id = \(bind: id)").run()
    }

    /// Forgets file `id` and its thumbnail inside the caller's transaction `sql` (its message was deleted); returns the
    /// ids whose bytes the caller erases once that transaction has committed (`id` always among them).
    @discardableResult
    public static func forget(_ id: String, in sql: any SQLDatabase) async throws -> [String] {
        let gone = try await sql.raw("DELETE FROM files WHERE id = \(bind: id) OR parent_id = \(bind: id) RETURNING id").all().map {
            try $0.decode(column: "id", as: String.self)
        }
        return [id] + gone.filter { $0 != id }
    }

    /// The chat file `id` was sent in, if any.
    public func chat(ofFile id: String) async throws -> String? {
        try await self.database.read { sql in
            try await sql.raw("SELECT chat_id FROM files WHERE id = \(bind: id)").first()?.decode(column: "chat_id", as: String?.self)
        }
    }
}
