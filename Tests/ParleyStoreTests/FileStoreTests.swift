import Foundation
import ParleyCore
import ParleyTestSupport
import Testing

@testable import ParleyStore

@Suite("Files and server secrets on SQLite and PostgreSQL")
struct FileStoreTests {
    @Test("a file is found with its facts, owned by its uploader only, and tied to the chat it is sent in", arguments: DatabaseKind.allCases)
    func fileLifecycle(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = FileStore(database: database)
            let file = FileRecord(id: Identifier.make(), contentType: "image/webp", size: 1234, width: 3, height: nil)
            let owner = Identifier.make()
            try await store.insert(file, ownerID: owner, now: 1)
            #expect(try await store.file(file.id) == file)
            #expect(try await store.file(Identifier.make()) == nil)
            let owned = try await database.transaction { sql in
                [try await FileStore.isOwned(file.id, by: owner, in: sql), try await FileStore.isOwned(file.id, by: Identifier.make(), in: sql)]
            }
            #expect(owned == [true, false])
            #expect(try await store.chat(ofFile: file.id) == nil)
            let chatID = Identifier.make()
            try await database.transaction { sql in try await FileStore.attach(file.id, toChat: chatID, in: sql) }
            #expect(try await store.chat(ofFile: file.id) == chatID)
        }
    }

    @Test("instances asking for a secret at once all get the one stored first", arguments: DatabaseKind.allCases)
    func oneSecretForEveryInstance(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let secrets = ServerSecrets(database: database)
            let values = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<6 {
                    group.addTask { try await secrets.value(named: "test_key", storingIfAbsent: "candidate \(index)") }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(values.count == 1)
            #expect(try await secrets.value(named: "test_key", storingIfAbsent: "late") == values.first)
            #expect(try await secrets.value(named: "other_key", storingIfAbsent: "mine") == "mine")
        }
    }
}
