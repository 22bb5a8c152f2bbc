public import Foundation
public import Hummingbird
import NIOPosix

/// Where uploaded file bytes live; the database keeps what they are.
public protocol BlobStore: Sendable {
    /// Bytes `range` of the blob under `key`, read as the client takes them: a download holds a chunk, not the file.
    /// (The caller knows the blob's size from the database.)
    func stream(key: String, range: ClosedRange<Int>, context: some RequestContext) async throws -> ResponseBody
    /// Stores `bytes` under `key`, replacing nothing: keys are fresh ids.
    func put(_ bytes: [UInt8], key: String) async throws
    /// The bytes under `key`, or nil.
    func get(key: String) async throws -> [UInt8]?
    /// Erases the bytes under `key`; nothing there is not an error.
    func delete(key: String) async throws
    /// Calls `body` with the keys of the blobs written before `cutoff`, some at a time, in no order (the sweep asks the
    /// database which of them no file names). Half-written leftovers from before `cutoff` are erased on the way.
    func keys(writtenBefore cutoff: Date, _ body: ([String]) async throws -> Void) async throws
    /// Throws when the store cannot take files now, for `/health`: cheap, and touching no stored blob.
    func check() async throws
}

/// Files under a folder (by default `<data dir>/files`), written to a temporary name, flushed to disk and renamed, so a reader
/// never sees half a file and an acknowledged upload survives a crash or power loss (as its database row does).
public struct DiskBlobStore: BlobStore {
    let root: URL

    /// Keeps files under `directory`.
    public init(directory: String) throws {
        self.root = URL(fileURLWithPath: directory, isDirectory: true)
        try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
    }

    package func path(for key: String) -> URL {
        // Two levels of fan-out keep directories small; keys are our own ids, never client input.
        let shard = String(key.suffix(4))
        return self.root.appendingPathComponent(String(shard.prefix(2))).appendingPathComponent(String(shard.suffix(2))).appendingPathComponent(key)
    }

    public func put(_ bytes: [UInt8], key: String) async throws {
        let target = self.path(for: key)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = target.appendingPathExtension("partial")
        try Self.writeDurably(bytes, to: temporary.path)
        try FileManager.default.moveItem(at: temporary, to: target)
        // The rename is durable once the folder holding it is flushed.
        try Self.sync(path: target.deletingLastPathComponent().path, flags: O_RDONLY | O_DIRECTORY)
    }

    static func writeDurably(_ bytes: [UInt8], to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw BlobStoreError(path: path, errno: errno) }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if result < 0 {
                if errno == EINTR { continue }
                throw BlobStoreError(path: path, errno: errno)
            }
            written += result
        }
        guard fsync(descriptor) == 0 else { throw BlobStoreError(path: path, errno: errno) }
    }

    static func sync(path: String, flags: Int32) throws {
        let descriptor = open(path, flags | O_CLOEXEC)
        guard descriptor >= 0 else { throw BlobStoreError(path: path, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw BlobStoreError(path: path, errno: errno) }
    }

    public func stream(key: String, range: ClosedRange<Int>, context: some RequestContext) async throws -> ResponseBody {
        // Non-blocking reads on NIO's thread pool, 64 KiB at a time, each written before the next is read.
        try await FileIO().loadFile(path: self.path(for: key).path, range: range, context: context, chunkLength: 64 * 1024)
    }

    public func get(key: String) async throws -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: self.path(for: key).path) else { return nil }
        return [UInt8](data)
    }

    public func delete(key: String) async throws {
        let path = self.path(for: key).path
        guard unlink(path) == 0 || errno == ENOENT else { throw BlobStoreError(path: path, errno: errno) }
    }
}

extension DiskBlobStore {
    /// The folder takes a file: a small one is written under a fresh name beside the shard folders, and erased. (Not
    /// flushed: this asks whether the folder is there and writable and the filesystem has room, not how fast it syncs.)
    public func check() async throws {
        let probe = self.root.appendingPathComponent(".health-\(UInt64.random(in: 0...UInt64.max))").path
        try await NIOThreadPool.singleton.runIfActive {
            let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
            guard descriptor >= 0 else { throw BlobStoreError(path: probe, errno: errno) }
            defer {
                close(descriptor)
                unlink(probe)
            }
            guard write(descriptor, "ok", 2) == 2 else { throw BlobStoreError(path: probe, errno: errno) }
        }
    }

    public func keys(writtenBefore cutoff: Date, _ body: ([String]) async throws -> Void) async throws {
        // Directory walks block: they run on NIO's thread pool, one first-level folder (1/256 of the keys) at a time.
        let folders = try await NIOThreadPool.singleton.runIfActive { try Self.folders(in: self.root) }
        for folder in folders {
            let keys = try await NIOThreadPool.singleton.runIfActive { try Self.keys(under: folder, writtenBefore: cutoff) }
            if !keys.isEmpty { try await body(keys) }
        }
    }

    private static func folders(in directory: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.isDirectoryKey]).filter {
            try $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory == true
        }
    }

    private static func keys(under folder: URL, writtenBefore cutoff: Date) throws -> [String] {
        var keys: [String] = []
        for shard in try Self.folders(in: folder) {
            for file in try FileManager.default.contentsOfDirectory(at: shard, includingPropertiesForKeys: [.contentModificationDateKey]) {
                guard let written = try file.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate, written < cutoff
                else { continue }
                if file.pathExtension == "partial" {
                    // A write that never finished (the process died before its rename).
                    unlink(file.path)
                } else {
                    keys.append(file.lastPathComponent)
                }
            }
        }
        return keys
    }
}

/// A file operation of the blob store failed.
struct BlobStoreError: Error, CustomStringConvertible {
    let path: String
    let errno: Int32

    var description: String { "\(self.path): \(String(cString: strerror(self.errno)))" }
}
