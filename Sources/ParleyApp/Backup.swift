import ChatService
import Foundation
public import Logging
public import ParleyCore
import ParleyStore
import SQLKit

/// What `parley backup` wrote, as `manifest.json` in the backup folder.
public struct BackupManifest: Codable, Sendable, Equatable {
    /// When the database snapshot was taken (milliseconds since 1970): everything committed before it is in the backup.
    public var snapshotAt: Int64
    /// `sqlite`: the database is `parley.sqlite` in the folder. `postgres`: the database is not in the folder (take it
    /// with `pg_dump`, docs/deploy.md), only the files are.
    public var database: String
    /// The highest migration the snapshot has.
    public var schemaVersion: Int?
    /// How many stored files (blobs) the folder holds.
    public var files: Int
}

/// Why a backup or a restore cannot go on.
public struct BackupError: Error, CustomStringConvertible {
    public let description: String
}

/// `parley backup --to DIR`: a consistent copy of a running Parley's data, taken while it serves.
///
/// The stored files are copied first, then the database is snapshotted (SQLite: `VACUUM INTO`, a transactionally
/// consistent copy made on a read connection, never a file copy of a live WAL database), then the files the snapshot
/// names that were stored meanwhile are copied too. Files are never changed once stored, only added and erased, so every
/// file the snapshot names is in the folder: one erased during the backup was copied in the first step. The secrets that
/// signing and file URLs need (`server_secrets`) are in the database. On PostgreSQL the folder gets the files only: the
/// database is taken with `pg_dump` (docs/deploy.md), after the files, for the same reason. With the files in an object
/// store (`PARLEY_BLOB_STORE=s3://…`) its objects are written into the folder in the disk store's layout, the same way.
public func backup(to folder: String, configuration: ParleyConfiguration, logger: Logger) async throws -> BackupManifest {
    do {
        return try await backupFiles(to: folder, configuration: configuration, logger: logger)
    } catch let error as ObjectStoreError {
        // The operator reads what failed where, not the sentence an HTTP client gets.
        throw BackupError(description: "\(error)")
    }
}

private func backupFiles(to folder: String, configuration: ParleyConfiguration, logger: Logger) async throws -> BackupManifest {
    let target = URL(fileURLWithPath: folder, isDirectory: true)
    if let existing = try? FileManager.default.contentsOfDirectory(atPath: target.path), !existing.isEmpty {
        throw BackupError(description: "\(folder) is not empty: back up into a new folder")
    }
    try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
    let source = URL(fileURLWithPath: configuration.dataDirectory, isDirectory: true).appendingPathComponent("files", isDirectory: true)
    let copies = target.appendingPathComponent("files", isDirectory: true)
    // The stored files named in `only` (all when nil) not yet in the folder; how many were copied.
    let copyFiles = { (only: Set<String>?) async throws -> Int in
        switch configuration.blobStore {
        case .disk: try copyBlobs(from: source, to: copies, only: only)
        case .s3(let settings): try await copyObjects(from: S3BlobStore(settings: settings), to: copies, only: only)
        }
    }
    var copied = try await copyFiles(nil)
    let database = try await Database.open(configuration.database, sqliteSynchronous: configuration.sqliteSynchronous, logger: logger)
    let manifest = try await database.closing { () -> BackupManifest in
        let snapshotAt = Timestamp.millis()
        let schemaVersion = try await database.read { sql in
            try await sql.raw("SELECT MAX(version) AS v FROM schema_migrations").first()?.decode(column: "v", as: Int?.self)
        }
        switch configuration.database {
        case .sqlite:
            let path = target.appendingPathComponent("parley.sqlite").path
            try await database.read { sql in try await sql.raw("VACUUM INTO \(bind: path)").run() }
            // The files the snapshot names that were stored after the first copy.
            let snapshot = try await Database.open(.sqlite(path: path), logger: logger)
            let named = try await snapshot.closing {
                try await snapshot.read { sql in try await sql.raw("SELECT id FROM files").all().map { try $0.decode(column: "id", as: String.self) }
                }
            }
            copied += try await copyFiles(Set(named))
            return BackupManifest(snapshotAt: snapshotAt, database: "sqlite", schemaVersion: schemaVersion, files: copied)
        case .postgres:
            return BackupManifest(snapshotAt: snapshotAt, database: "postgres", schemaVersion: schemaVersion, files: copied)
        }
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(manifest).write(to: target.appendingPathComponent("manifest.json"))
    logger.info("backup written", metadata: ["to": .string(folder), "files": "\(manifest.files)", "database": .string(manifest.database)])
    return manifest
}

/// `parley restore --from DIR`: puts a backup into an empty data folder (SQLite: the database and the files; PostgreSQL:
/// the files, the database being restored with `pg_restore` beforehand). Start Parley on it afterwards. With an object
/// store the files go into its bucket (under its prefix) before the database is put in place, skipping objects the bucket
/// has (keys are never reused, so the same key holds the same bytes): a restore cut short can be run again.
public func restore(from folder: String, configuration: ParleyConfiguration, logger: Logger) async throws -> BackupManifest {
    let source = URL(fileURLWithPath: folder, isDirectory: true)
    guard let data = FileManager.default.contents(atPath: source.appendingPathComponent("manifest.json").path),
        let manifest = try? JSONDecoder().decode(BackupManifest.self, from: data)
    else { throw BackupError(description: "\(folder) has no manifest.json: not a Parley backup") }
    let dataFolder = URL(fileURLWithPath: configuration.dataDirectory, isDirectory: true)
    let files = dataFolder.appendingPathComponent("files", isDirectory: true)
    let backupFiles = source.appendingPathComponent("files", isDirectory: true)
    if configuration.blobStore == .disk, let present = try? FileManager.default.contentsOfDirectory(atPath: files.path), !present.isEmpty {
        throw BackupError(description: "\(files.path) is not empty: restore into an empty data folder")
    }
    var sqlitePath: String?
    switch (manifest.database, configuration.database) {
    case ("sqlite", .sqlite(let path)):
        if FileManager.default.fileExists(atPath: path) {
            throw BackupError(description: "\(path) exists: restore into an empty data folder")
        }
        sqlitePath = path
    case ("postgres", .postgres):
        break
    default:
        throw BackupError(description: "the backup is of a \(manifest.database) database; PARLEY_DATABASE_URL names another kind")
    }
    switch configuration.blobStore {
    case .disk:
        _ = try copyBlobs(from: backupFiles, to: files, only: nil)
    case .s3(let settings):
        do {
            _ = try await putObjects(from: backupFiles, into: S3BlobStore(settings: settings))
        } catch let error as ObjectStoreError {
            throw BackupError(description: "\(error)")
        }
    }
    // The database last: a restore that stopped before it can be run again.
    if let sqlitePath {
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: sqlitePath).deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source.appendingPathComponent("parley.sqlite").path, toPath: sqlitePath)
    }
    logger.info("backup restored", metadata: ["from": .string(folder), "files": "\(manifest.files)"])
    return manifest
}

/// Copies the blobs under `source` (as `DiskBlobStore` keeps them, in two levels of folders) into `target` at the same
/// places, those named in `only` when given, skipping what `target` has and half-written `.partial` files; returns how
/// many it copied. A blob erased while this runs is skipped.
func copyBlobs(from source: URL, to target: URL, only: Set<String>?) throws -> Int {
    let manager = FileManager.default
    guard let walk = manager.enumerator(at: source, includingPropertiesForKeys: [.isRegularFileKey]) else { return 0 }
    let base = source.standardizedFileURL.path
    var copied = 0
    for case let file as URL in walk {
        let name = file.lastPathComponent
        guard (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true, !name.hasSuffix(".partial"),
            only?.contains(name) ?? true
        else { continue }
        let relative = String(file.standardizedFileURL.path.dropFirst(base.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let destination = target.appendingPathComponent(relative)
        guard !manager.fileExists(atPath: destination.path) else { continue }
        try manager.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        do {
            try manager.copyItem(at: file, to: destination)
            copied += 1
        } catch {
            // Erased while the backup ran (its message was deleted): nothing to copy.
            if manager.fileExists(atPath: file.path) { throw error }
        }
    }
    return copied
}

/// Writes the objects of `store` named in `only` (all when nil) into `target` in the disk store's layout, skipping what
/// `target` has; returns how many it wrote. An object erased while this runs is skipped.
func copyObjects(from store: S3BlobStore, to target: URL, only: Set<String>?) async throws -> Int {
    let disk = try DiskBlobStore(directory: target.path)
    var copied = 0
    func copy(_ key: String) async throws {
        guard !FileManager.default.fileExists(atPath: disk.path(for: key).path), let bytes = try await store.get(key: key) else { return }
        try await disk.put(bytes, key: key)
        copied += 1
    }
    if let only {
        for key in only.sorted() { try await copy(key) }
    } else {
        try await store.list { objects in
            for object in objects { try await copy(object.key) }
        }
    }
    return copied
}

/// Puts the blobs under `source` (in the disk store's layout, `.partial` leftovers skipped) into `store`, skipping keys
/// it has; returns how many it put.
func putObjects(from source: URL, into store: S3BlobStore) async throws -> Int {
    var put = 0
    let files = FileManager.default.enumerator(at: source, includingPropertiesForKeys: [.isRegularFileKey])?.compactMap { $0 as? URL } ?? []
    for file in files where (try? file.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true && file.pathExtension != "partial" {
        let key = file.lastPathComponent
        guard try await store.size(key: key) == nil else { continue }
        guard let data = FileManager.default.contents(atPath: file.path) else { throw BackupError(description: "cannot read \(file.path)") }
        try await store.put([UInt8](data), key: key)
        put += 1
    }
    return put
}
