import Foundation
import ParleyCore
import Testing

@testable import ChatService

@Suite("Files on disk")
struct BlobStoreTests {
    @Test("a stored file reads back whole, with no temporary file left beside it, and a missing key is nil")
    func roundTrip() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-blobs-\(Identifier.make())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try DiskBlobStore(directory: folder.path)
        let key = Identifier.make()
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await store.put(bytes, key: key)
        #expect(try await store.get(key: key) == bytes)
        #expect(try await store.get(key: Identifier.make()) == nil)
        let leftovers = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".partial") }
        #expect(leftovers == [])
        try await store.put([], key: "empty-\(key)")
        #expect(try await store.get(key: "empty-\(key)") == [])
    }
}
