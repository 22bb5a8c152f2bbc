import Crypto
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
            let claimed = try await database.transaction { sql in
                [
                    try await FileStore.claimAsAvatar(file.id, by: Identifier.make(), now: 2, in: sql),
                    try await FileStore.claimAsAvatar(file.id, by: owner, now: 2, in: sql),
                    try await FileStore.claimAsAvatar(Identifier.make(), by: owner, now: 2, in: sql),
                ]
            }
            #expect(claimed == [false, true, false])
            #expect(try await store.chat(ofFile: file.id) == nil)
            let chatID = Identifier.make()
            try await database.transaction { sql in try await FileStore.attach(file.id, toChat: chatID, in: sql) }
            #expect(try await store.chat(ofFile: file.id) == chatID)
        }
    }

    @Test(
        "usage sums an owner's files; the sweep forgets old uploads no message carries and no one has as avatar",
        arguments: DatabaseKind.allCases
    )
    func usageAndUnclaimedUploads(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = FileStore(database: database)
            let (ann, ben) = (Identifier.make(), Identifier.make())
            func upload(_ owner: String, size: Int64, at time: Int64) async throws -> String {
                let file = FileRecord(id: Identifier.make(), contentType: "image/png", size: size, width: 1, height: 1)
                try await store.insert(file, ownerID: owner, now: time)
                return file.id
            }
            let neverSent = try await upload(ann, size: 100, at: 10)
            let sent = try await upload(ann, size: 200, at: 10)
            let avatar = try await upload(ann, size: 400, at: 10)
            let formerAvatar = try await upload(ann, size: 800, at: 10)
            let recent = try await upload(ann, size: 1600, at: 1_000)
            let bens = try await upload(ben, size: 3200, at: 10)
            #expect(try await store.usage(of: ann) == 3100)
            #expect(try await store.usage(of: ben) == 3200)
            #expect(try await store.usage(of: Identifier.make()) == 0)
            try await database.transaction { sql in
                try await FileStore.attach(sent, toChat: Identifier.make(), in: sql)
                #expect(try await FileStore.claimAsAvatar(avatar, by: ann, now: 20, in: sql))
                #expect(try await FileStore.claimAsAvatar(formerAvatar, by: ann, now: 20, in: sql))
                try await FileStore.releaseAvatar(formerAvatar, in: sql)
            }
            // Two at a time, oldest first; the recent upload stays until it is old enough.
            var forgotten = try await store.forgetUnclaimed(before: 500, limit: 2)
            #expect(forgotten.count == 2)
            forgotten += try await store.forgetUnclaimed(before: 500, limit: 2)
            #expect(Set(forgotten) == [neverSent, formerAvatar, bens])
            #expect(try await store.forgetUnclaimed(before: 500, limit: 2).isEmpty)
            #expect(try await store.existing([neverSent, sent, avatar, formerAvatar, recent, bens]) == [sent, avatar, recent])
            #expect(try await store.usage(of: ann) == 2200)
            #expect(try await store.forgetUnclaimed(before: 2_000, limit: 10) == [recent])
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

    @Test(
        "a key is made once, 256 bits at random, the same for every instance; a stored value that is not one is refused",
        arguments: DatabaseKind.allCases
    )
    func oneKeyForEveryInstance(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let secrets = ServerSecrets(database: database)
            let first = try await secrets.symmetricKey(named: "test_key")
            let again = try await ServerSecrets(database: database).symmetricKey(named: "test_key")
            let other = try await secrets.symmetricKey(named: "other_key")
            #expect(first.bitCount == 256)
            #expect(first == again)
            #expect(first != other)
            _ = try await secrets.value(named: "broken_key", storingIfAbsent: "not base64!")
            _ = try await secrets.value(named: "short_key", storingIfAbsent: Data(count: 16).base64EncodedString())
            for name in ["broken_key", "short_key"] {
                await #expect(throws: StoreError.self) { try await secrets.symmetricKey(named: name) }
            }
        }
    }
}
