import Foundation

/// Where uploaded file bytes live; the database keeps what they are.
public protocol BlobStore: Sendable {
    /// Stores `bytes` under `key`, replacing nothing: keys are fresh ids.
    func put(_ bytes: [UInt8], key: String) async throws
    /// The bytes under `key`, or nil.
    func get(key: String) async throws -> [UInt8]?
}

/// Files under a folder (by default `<data dir>/files`), written to a temporary name and renamed so a reader never sees half a file.
public struct DiskBlobStore: BlobStore {
    let root: URL

    /// Keeps files under `directory`.
    public init(directory: String) throws {
        self.root = URL(fileURLWithPath: directory, isDirectory: true)
        try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
    }

    func path(for key: String) -> URL {
        // Two levels of fan-out keep directories small; keys are our own ids, never client input.
        let shard = String(key.suffix(4))
        return self.root.appendingPathComponent(String(shard.prefix(2))).appendingPathComponent(String(shard.suffix(2))).appendingPathComponent(key)
    }

    public func put(_ bytes: [UInt8], key: String) async throws {
        let target = self.path(for: key)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = target.appendingPathExtension("partial")
        try Data(bytes).write(to: temporary, options: .atomic)
        try FileManager.default.moveItem(at: temporary, to: target)
    }

    public func get(key: String) async throws -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: self.path(for: key).path) else { return nil }
        return [UInt8](data)
    }
}
