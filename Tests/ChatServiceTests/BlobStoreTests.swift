import Foundation
import Logging
import ParleyCore
import ParleyStore
import ParleyTestSupport
import Testing

@testable import ChatService

/// The stores a blob-store test runs on: the disk always, the S3 store when the test run has an S3-compatible server.
enum BlobStoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case disk, s3

    static var available: [BlobStoreKind] { TestObjectStore.isAvailable ? Self.allCases : [.disk] }

    var testDescription: String { self.rawValue }

    /// A new, empty store of this kind, and how to look for leftovers beside the stored blobs (the disk's `.partial` files).
    func make() async throws -> (store: any BlobStore, leftovers: () -> [String]) {
        switch self {
        case .disk:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-blobs-\(Identifier.make())")
            let store = try DiskBlobStore(directory: folder.path)
            return (
                store, { FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".partial") } ?? [] }
            )
        case .s3:
            let store = try await TestObjectStore.freshStore()
            return (store, { [] })
        }
    }
}

@Suite("Stored files, on disk and in an object store")
struct BlobStoreTests {
    @Test("a stored file reads back whole, with no temporary file left beside it, and a missing key is nil", arguments: BlobStoreKind.available)
    func roundTrip(kind: BlobStoreKind) async throws {
        let (store, leftovers) = try await kind.make()
        let key = Identifier.make()
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await store.put(bytes, key: key)
        #expect(try await store.get(key: key) == bytes)
        #expect(try await store.get(key: Identifier.make()) == nil)
        #expect(leftovers() == [])
        try await store.put([], key: "empty-\(key)")
        #expect(try await store.get(key: "empty-\(key)") == [])
    }

    @Test("erasing removes the bytes; erasing what is not there is no error", arguments: BlobStoreKind.available)
    func erase(kind: BlobStoreKind) async throws {
        let (store, _) = try await kind.make()
        let key = Identifier.make()
        try await store.put([1, 2, 3], key: key)
        try await store.delete(key: key)
        #expect(try await store.get(key: key) == nil)
        try await store.delete(key: key)
    }

    @Test("the sweep's listing names the blobs written before the cutoff, and none after", arguments: BlobStoreKind.available)
    func keysWrittenBefore(kind: BlobStoreKind) async throws {
        let (store, _) = try await kind.make()
        let keys = (0..<5).map { _ in Identifier.make() }
        for key in keys { try await store.put([7], key: key) }
        var before: [String] = []
        try await store.keys(writtenBefore: Date().addingTimeInterval(60)) { before += $0 }
        #expect(before.sorted() == keys.sorted())
        var after: [String] = []
        try await store.keys(writtenBefore: Date().addingTimeInterval(-60)) { after += $0 }
        #expect(after.isEmpty)
    }

    @Test("the sweep erases bytes no file row names and keeps those a row names", arguments: BlobStoreKind.available)
    func sweep(kind: BlobStoreKind) async throws {
        let (store, _) = try await kind.make()
        try await TestDatabases.with(.sqlite) { database in
            let owner = try await makeUsers(1, in: database)[0]
            let files = FileStore(database: database)
            let named = FileRecord(id: Identifier.make(), contentType: "application/octet-stream", size: 1, width: nil, height: nil, kind: .file)
            // A row written two hours on: not yet unclaimed long enough to go, at the sweep below.
            try await files.insert(named, ownerID: owner, now: Timestamp.millis() + 2 * 3600 * 1000)
            let orphan = Identifier.make()
            try await store.put([1], key: named.id)
            try await store.put([2], key: orphan)
            let sweeper = FileSweeper(files: files, blobs: store, interval: .seconds(3600), age: .seconds(3600), logger: Logger(label: "test"))
            // Two hours on, both blobs are older than the age: the one no row names goes, the other stays.
            let swept = try await sweeper.sweep(now: Date().addingTimeInterval(2 * 3600))
            #expect(swept.files == 0 && swept.blobs == 1)
            #expect(try await store.get(key: orphan) == nil)
            #expect(try await store.get(key: named.id) == [1])
        }
    }
}
