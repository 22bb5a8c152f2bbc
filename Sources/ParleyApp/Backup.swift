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
/// database is taken with `pg_dump` (docs/deploy.md), after the files, for the same reason.
public func backup(to folder: String, configuration: ParleyConfiguration, logger: Logger) async throws -> BackupManifest {
    let target = URL(fileURLWithPath: folder, isDirectory: true)
    if let existing = try? FileManager.default.contentsOfDirectory(atPath: target.path), !existing.isEmpty {
        throw BackupError(description: "\(folder) is not empty: back up into a new folder")
    }
    try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
    let source = URL(fileURLWithPath: configuration.dataDirectory, isDirectory: true).appendingPathComponent("files", isDirectory: true)
    let copies = target.appendingPathComponent("files", isDirectory: true)
    var copied = try copyBlobs(from: source, to: copies, only: nil)
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
            copied += try copyBlobs(from: source, to: copies, only: Set(named))
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
/// the files, the database being restored with `pg_restore` beforehand). Start Parley on it afterwards.
public func restore(from folder: String, configuration: ParleyConfiguration, logger: Logger) throws -> BackupManifest {
    let source = URL(fileURLWithPath: folder, isDirectory: true)
    guard let data = FileManager.default.contents(atPath: source.appendingPathComponent("manifest.json").path),
        let manifest = try? JSONDecoder().decode(BackupManifest.self, from: data)
    else { throw BackupError(description: "\(folder) has no manifest.json: not a Parley backup") }
    let dataFolder = URL(fileURLWithPath: configuration.dataDirectory, isDirectory: true)
    let files = dataFolder.appendingPathComponent("files", isDirectory: true)
    if let present = try? FileManager.default.contentsOfDirectory(atPath: files.path), !present.isEmpty {
        throw BackupError(description: "\(files.path) is not empty: restore into an empty data folder")
    }
    switch (manifest.database, configuration.database) {
    case ("sqlite", .sqlite(let path)):
        if FileManager.default.fileExists(atPath: path) {
            throw BackupError(description: "\(path) exists: restore into an empty data folder")
        }
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source.appendingPathComponent("parley.sqlite").path, toPath: path)
    case ("postgres", .postgres):
        break
    default:
        throw BackupError(description: "the backup is of a \(manifest.database) database; PARLEY_DATABASE_URL names another kind")
    }
    _ = try copyBlobs(from: source.appendingPathComponent("files", isDirectory: true), to: files, only: nil)
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
