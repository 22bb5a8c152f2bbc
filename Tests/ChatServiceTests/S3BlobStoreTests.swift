import Foundation
import HTTPTypes
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import Testing

@testable import ChatService

/// The S3 store against a real S3-compatible server (moto in server mode).
@Suite("Files in an S3-compatible object store", .enabled(if: TestObjectStore.isAvailable, TestObjectStore.skipped))
struct S3BlobStoreTests {
    @Test("an object is stored, looked up, read and erased; a missing key reads as nil, looks up as nil and erases without error")
    func roundTrip() async throws {
        let store = try await TestObjectStore.freshStore()
        let key = Identifier.make()
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try await store.put(bytes, key: key)
        #expect(try await store.get(key: key) == bytes)
        #expect(try await store.size(key: key) == bytes.count)
        try await store.delete(key: key)
        #expect(try await store.get(key: key) == nil)
        #expect(try await store.size(key: key) == nil)
        try await store.delete(key: key)
        try await store.put([], key: "empty")
        #expect(try await store.get(key: "empty") == [])
    }

    @Test("a listing of many keys comes in pages through continuation tokens, each key once, only the store's prefix")
    func pagination() async throws {
        // Prefixes without a slash: moto's signature check rejects a `/` in a query value even when encoded as AWS
        // says (`%2F`); boto3's own ListObjectsV2 with `Prefix="one/"` is refused by it the same way.
        let store = try await TestObjectStore.freshStore(prefix: "one-")
        let other = S3BlobStore(
            settings: TestObjectStore.settings(bucket: store.settings.bucket, endpoint: store.settings.endpoint, prefix: "two-")
        )
        let keys = (0..<23).map { _ in Identifier.make() }.sorted()
        for key in keys { try await store.put([1], key: key) }
        try await other.put([2], key: "elsewhere")
        var pages: [[String]] = []
        try await store.list(pageSize: 5) { objects in pages.append(objects.map(\.key)) }
        #expect(pages.count == 5 && pages.map(\.count) == [5, 5, 5, 5, 3])
        #expect(pages.flatMap { $0 } == keys)
        var old: [String] = []
        try await store.keys(writtenBefore: Date().addingTimeInterval(60)) { old += $0 }
        #expect(old.sorted() == keys)
        var none: [String] = []
        try await store.keys(writtenBefore: Date().addingTimeInterval(-3600)) { none += $0 }
        #expect(none.isEmpty)
    }

    @Test("a 12 MB object reads back whole and its size is right")
    func largeObject() async throws {
        let store = try await TestObjectStore.freshStore()
        // Made and compared eight bytes, or a block, at a time: byte by byte, in a debug build, took seconds of CPU.
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 12 << 20)
        bytes.withUnsafeMutableBytes { buffer in
            for offset in stride(from: 0, to: buffer.count, by: 8) { buffer.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self) }
        }
        try await store.put(bytes, key: "large")
        #expect(try await store.size(key: "large") == bytes.count)
        #expect(try await store.get(key: "large").map { Data($0) } == Data(bytes))
    }

    @Test("virtual-host style: the bucket is in the Host header, the key alone in the path")
    func virtualHostStyle() async throws {
        let endpoint = try #require(TestObjectStore.endpoint)
        let port = try #require(URLComponents(string: endpoint)?.port)
        let path = try await TestObjectStore.freshStore()
        // No resolver here knows BUCKET.s3.parley.test: connect to moto, name the bucket in the Host header.
        var virtual = S3BlobStore(
            settings: TestObjectStore.settings(bucket: path.settings.bucket, endpoint: "http://s3.parley.test:\(port)", style: .virtual)
        )
        virtual.connectionOverride = endpoint
        let address = virtual.address(key: "k1")
        #expect(address.host == "\(path.settings.bucket).s3.parley.test:\(port)" && address.path == "/k1")
        try await virtual.put([9, 8, 7], key: "k1")
        #expect(try await path.get(key: "k1") == [9, 8, 7])
        #expect(try await virtual.get(key: "k1") == [9, 8, 7])
        var listed: [String] = []
        try await virtual.list { listed += $0.map(\.key) }
        #expect(listed == ["k1"])
    }

    @Test("a store that is down fails at once with a 503 in the contract's words, naming what failed for the log")
    func storeDown() async throws {
        let store = try TestObjectStore.downStore()
        let started = ContinuousClock.now
        let operations: [(String, @Sendable () async throws -> Void)] = [
            ("put", { try await store.put([1], key: "k") }), ("get", { _ = try await store.get(key: "k") }),
            ("delete", { try await store.delete(key: "k") }), ("list", { try await store.list { _ in } }),
        ]
        for (name, operation) in operations {
            await #expect(
                "\(name)",
                performing: { try await operation() },
                throws: { error in
                    guard let error = error as? ObjectStoreError else { return false }
                    return error.apiError.status == .serviceUnavailable && error.apiError.code == "file_storage_unavailable"
                        && error.description.contains("parley-down")
                }
            )
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test(
        "the server checks every request's signature: a wrong secret is refused (SignatureDoesNotMatch), the right one served",
        .enabled(if: TestObjectStore.checksSignatures, "the S3 server of this run does not check signatures")
    )
    func signaturesAreChecked() async throws {
        let store = try await TestObjectStore.freshStore()
        try await store.put([1, 2], key: "signed")
        let forged = S3BlobStore(
            settings: TestObjectStore.settings(bucket: store.settings.bucket, endpoint: store.settings.endpoint, secretAccessKey: "not-the-secret")
        )
        await #expect(
            "get",
            performing: { _ = try await forged.get(key: "signed") },
            throws: { error in (error as? ObjectStoreError)?.description.contains("SignatureDoesNotMatch") == true }
        )
        await #expect(throws: ObjectStoreError.self) { try await forged.put([3], key: "forged") }
        #expect(try await store.get(key: "signed") == [1, 2])
        #expect(try await store.get(key: "forged") == nil)
    }

    @Test("a bucket that does not exist is an error naming the store's code, not a missing file")
    func missingBucket() async throws {
        let endpoint = try #require(TestObjectStore.endpoint)
        let store = S3BlobStore(settings: TestObjectStore.settings(bucket: TestObjectStore.bucketName(), endpoint: endpoint))
        await #expect(
            "get",
            performing: { _ = try await store.get(key: "k") },
            throws: { error in (error as? ObjectStoreError)?.description.contains("NoSuchBucket") == true }
        )
    }

    @Test("an upload whose PUT fails is refused with 503 and leaves no file row (store down, bucket missing)", arguments: DatabaseKind.allCases)
    func failedUploadLeavesNothing(kind: DatabaseKind) async throws {
        let endpoint = try #require(TestObjectStore.endpoint)
        let stores = [
            try TestObjectStore.downStore(),
            S3BlobStore(settings: TestObjectStore.settings(bucket: TestObjectStore.bucketName(), endpoint: endpoint)),
        ]
        try await TestDatabases.with(kind) { database in
            let users = try await makeUsers(1, in: database)
            for store in stores {
                let chats = ChatService(
                    database: database,
                    directory: FakeDirectory(ids: Set(users)),
                    blobs: store,
                    signer: try await FileURLSigner.load(database: database, baseURL: ""),
                    bus: InProcessEventBus(),
                    maxUploadBytes: 1000
                )
                for upload in [Upload(bytes: ChatServiceTests.png, field: .image), Upload(bytes: [1, 2, 3], field: .file, name: "a.bin")] {
                    await #expect(throws: ObjectStoreError.self) { try await chats.store(upload, owner: users[0]) }
                }
            }
            let rows = try await database.read { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM files").first()!.decode(column: "n", as: Int.self)
            }
            #expect(rows == 0)
        }
    }
}
