import Foundation
import ParleyCore
import ParleyStore
import ParleyTestSupport
import Testing

@testable import UserService

@Suite("User storage on SQLite and PostgreSQL")
struct UserStoreTests {
    @Test("users created in one batch are found by id, and a missing id is left out", arguments: DatabaseKind.allCases)
    func insertAndFind(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = UserStore(database: database)
            let users = (0..<3).map { (id: Identifier.make(), email: "u\($0)@example.invalid", name: "User \($0)") }
            try await store.insert(users, now: 5)
            let found = try await store.find(ids: users.map(\.id) + [Identifier.make()])
            #expect(Set(found.map(\.id)) == Set(users.map(\.id)))
            #expect(try await store.find(id: users[1].id)?.email == "u1@example.invalid")
            #expect(try await store.find(id: Identifier.make()) == nil)
        }
    }

    @Test("a first sign-in creates the account once, named after the address", arguments: DatabaseKind.allCases)
    func findOrCreate(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let first = try await database.transaction { sql in try await UserStore.findOrCreate(email: "zoe@example.com", now: 1, in: sql) }
            let again = try await database.transaction { sql in try await UserStore.findOrCreate(email: "zoe@example.com", now: 2, in: sql) }
            #expect(first.id == again.id)
            #expect(first.name == "zoe")
            #expect(again.createdAt == 1)
        }
    }

    @Test("renaming and setting an avatar change what search and look-ups find", arguments: DatabaseKind.allCases)
    func renameAndAvatar(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = UserStore(database: database)
            let id = Identifier.make()
            try await store.insert([(id, "a@example.invalid", "Alice")], now: 1)
            let avatar = Identifier.make()
            try await database.transaction { sql in
                try await UserStore.updateName(id: id, name: "Béatrice", now: 2, in: sql)
                try await UserStore.updateAvatar(id: id, fileID: avatar, now: 2, in: sql)
            }
            #expect(try await store.search(query: "ali", after: nil, limit: 10).isEmpty)
            let found = try await store.search(query: "BÉA", after: nil, limit: 10)
            #expect(found.map(\.id) == [id])
            #expect(found.first?.avatarFileID == avatar)
            try await database.transaction { sql in try await UserStore.updateAvatar(id: id, fileID: nil, now: 3, in: sql) }
            #expect(try await store.find(id: id)?.avatarFileID == nil)
        }
    }

    @Test("search pages by name then id, and treats % and _ as plain characters", arguments: DatabaseKind.allCases)
    func searchPages(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let store = UserStore(database: database)
            let names = ["Sam 100%", "Sam 1000", "Sam_x", "Samx", "Sam 2"]
            try await store.insert(names.enumerated().map { (Identifier.make(), "s\($0.offset)@example.invalid", $0.element) }, now: 1)
            #expect(try await store.search(query: "100%", after: nil, limit: 10).map(\.name) == ["Sam 100%"])
            #expect(try await store.search(query: "m_", after: nil, limit: 10).map(\.name) == ["Sam_x"])
            let first = try await store.search(query: "sam", after: nil, limit: 2)
            #expect(first.map(\.name) == ["Sam 100%", "Sam 1000"])
            let cursor = UserCursor(name: first[1].name.lowercased(), id: first[1].id)
            #expect(try await store.search(query: "sam", after: cursor, limit: 10).map(\.name) == ["Sam 2", "Sam_x", "Samx"])
        }
    }
}

@Suite("Login code and refresh token storage on SQLite and PostgreSQL")
struct TokenStoreTests {
    @Test("a code is replaced only once the resend window has passed", arguments: DatabaseKind.allCases)
    func resendWindow(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let stored = try await database.transaction { sql in
                [
                    try await TokenStore.storeCode(email: "a@b.co", hash: "h1", expiresAt: 100, now: 10, replacingUpTo: -50, in: sql),
                    try await TokenStore.storeCode(email: "a@b.co", hash: "h2", expiresAt: 120, now: 30, replacingUpTo: 5, in: sql),
                    try await TokenStore.storeCode(email: "a@b.co", hash: "h3", expiresAt: 170, now: 80, replacingUpTo: 20, in: sql),
                ]
            }
            #expect(stored == [true, false, true])
            let (createdAt, code) = try await database.transaction { sql in
                (
                    try await TokenStore.codeCreatedAt(email: "a@b.co", in: sql),
                    try await TokenStore.countAttempt(email: "a@b.co", maxAttempts: 5, now: 90, in: sql).counted
                )
            }
            #expect(createdAt == 80)
            #expect(code?.hash == "h3" && code?.expiresAt == 170)
        }
    }

    @Test("tries are counted up to the limit; a used code stays, marked used", arguments: DatabaseKind.allCases)
    func attemptsAndUse(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let tries = try await database.transaction { sql in
                _ = try await TokenStore.storeCode(email: "a@b.co", hash: "h", expiresAt: 100, now: 1, replacingUpTo: 0, in: sql)
                var tries: [Bool] = []
                for _ in 0..<4 { tries.append(try await TokenStore.countAttempt(email: "a@b.co", maxAttempts: 3, now: 2, in: sql).counted != nil) }
                return tries
            }
            #expect(tries == [true, true, true, false])
            let (exists, missing) = try await database.transaction { sql in
                (try await TokenStore.codeExists(email: "a@b.co", in: sql), try await TokenStore.codeExists(email: "x@b.co", in: sql))
            }
            #expect(exists && !missing)
            let used = try await database.transaction { sql in
                _ = try await TokenStore.storeCode(email: "c@b.co", hash: "h", expiresAt: 100, now: 1, replacingUpTo: 0, in: sql)
                try await TokenStore.markCodeUsed(email: "c@b.co", now: 2, in: sql)
                return try await TokenStore.countAttempt(email: "c@b.co", maxAttempts: 3, now: 3, in: sql).counted
            }
            #expect(used?.isUsed == true && used?.expiresAt == 2)
        }
    }

    @Test("a refresh token is rotated once, and revoking its family revokes every token of it", arguments: DatabaseKind.allCases)
    func refreshTokens(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let userID = Identifier.make()
            try await UserStore(database: database).insert([(userID, "r@example.invalid", "R")], now: 1)
            let (first, second, again, revoked) = try await database.transaction { sql in
                try await TokenStore.insertRefreshToken(hash: "t1", familyID: "f", userID: userID, now: 1, expiresAt: 100, in: sql)
                try await TokenStore.insertRefreshToken(hash: "t2", familyID: "f", userID: userID, now: 1, expiresAt: 100, in: sql)
                let token = try #require(try await TokenStore.refreshToken(hash: "t1", in: sql))
                let first = try await TokenStore.markRotated(id: token.id, now: 2, in: sql)
                let second = try await TokenStore.markRotated(id: token.id, now: 3, in: sql)
                let again = try await TokenStore.refreshToken(hash: "t1", in: sql)
                try await TokenStore.revokeFamily(of: token, reason: .revoked, now: 4, in: sql)
                return (first, second, again, try await TokenStore.refreshToken(hash: "t2", in: sql))
            }
            #expect(first && !second)
            #expect(again?.rotatedAt == 2 && again?.userID == userID && again?.familyID == "f")
            #expect(revoked?.revokedAt == 4)
            #expect(try await database.transaction { sql in try await TokenStore.refreshToken(hash: "nope", in: sql) } == nil)
        }
    }
}

@Suite("The login flow on SQLite and PostgreSQL")
struct LoginFlowTests {
    func service(_ database: Database) async throws -> UserService {
        let tokens = await TokenIssuer(key: SigningKeyFixture.key, accessTokenLifetime: 900, refreshTokenLifetime: 3600)
        let signer = try await FileURLSigner.load(database: database, baseURL: "")
        return UserService(database: database, tokens: tokens, settings: .init(configuration: ParleyConfiguration()), signer: signer, mailQueued: nil)
    }

    /// The code in the login mail queued last.
    func mailedCode(_ database: Database) async throws -> String {
        let job = try #require(
            try await MailOutbox(database: database).claim(worker: "test", limit: 1, leaseMillis: 60_000, now: Timestamp.millis()).first
        )
        struct Payload: Decodable { var code: String }
        return try JSONDecoder().decode(Payload.self, from: Data(job.payload.utf8)).code
    }

    @Test("a mailed code signs in once, creating the account; a second code waits for the resend window", arguments: DatabaseKind.allCases)
    func codeSignsInOnce(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database)
            try await users.requestCode(email: "new@example.com", clientIP: "1.2.3.4", requestID: "r1")
            let refusal = await #expect(throws: LoginError.self) {
                try await users.requestCode(email: "new@example.com", clientIP: "1.2.3.4", requestID: "r2")
            }
            // The wait counts down from the 60 s window; a busy machine may have spent a second between the two requests.
            guard case .codeSentRecently(let wait)? = refusal else {
                Issue.record("expected codeSentRecently, got \(String(describing: refusal))")
                return
            }
            #expect((55...60).contains(wait))
            let code = try await self.mailedCode(database)
            let session = try await users.verify(email: "new@example.com", code: " \(code) ", clientIP: "1.2.3.4")
            #expect(session.user.email == "new@example.com" && session.user.name == "new")
            await #expect(throws: LoginError.noCode) { try await users.verify(email: "new@example.com", code: code, clientIP: "1.2.3.4") }
            #expect(try await users.profile(of: session.user.id) == session.user)
        }
    }

    @Test("wrong tries are counted even though they are refused, and the fifth burns the code", arguments: DatabaseKind.allCases)
    func wrongTriesBurnTheCode(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database)
            // One moment for every step: the Retry-After below counts down from the lockout, and a busy machine may take seconds.
            let now = Timestamp.millis()
            await #expect(throws: LoginError.malformedCode) {
                try await users.verify(email: "w@example.com", code: "12345", clientIP: "1.2.3.4", now: now)
            }
            await #expect(throws: LoginError.noCode) { try await users.verify(email: "w@example.com", code: "123456", clientIP: "1.2.3.4", now: now) }
            try await users.requestCode(email: "w@example.com", clientIP: "1.2.3.4", requestID: "r1", now: now)
            let code = try await self.mailedCode(database)
            let wrong = code == "000000" ? "000001" : "000000"
            for _ in 0..<5 {
                await #expect(throws: LoginError.wrongCode) {
                    try await users.verify(email: "w@example.com", code: wrong, clientIP: "1.2.3.4", now: now)
                }
            }
            await #expect(throws: LoginError.tooManyAttempts(retryAfter: 60)) {
                try await users.verify(email: "w@example.com", code: code, clientIP: "1.2.3.4", now: now)
            }
        }
    }

    @Test("a refresh token rotates once; presenting it again revokes the new one too", arguments: DatabaseKind.allCases)
    func refreshRotation(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database)
            try await users.requestCode(email: "r@example.com", clientIP: "1.2.3.4", requestID: "r1")
            let session = try await users.verify(email: "r@example.com", code: try await self.mailedCode(database), clientIP: "1.2.3.4")
            let rotated = try await users.refresh(session.refreshToken)
            await #expect(throws: LoginError.refreshTokenReused) { try await users.refresh(session.refreshToken) }
            await #expect(throws: LoginError.invalidRefreshToken) { try await users.refresh(rotated.refreshToken) }
            await #expect(throws: LoginError.invalidRefreshToken) { try await users.refresh("") }
        }
    }

    @Test("an avatar must be a file one uploaded oneself; a rename is undone with a refused avatar", arguments: DatabaseKind.allCases)
    func avatarOwnership(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await self.service(database)
            let (me, other) = (Identifier.make(), Identifier.make())
            try await UserStore(database: database).insert([(me, "me@example.invalid", "Me"), (other, "o@example.invalid", "Other")], now: 1)
            let mine = FileRecord(id: Identifier.make(), contentType: "image/png", size: 1, width: 1, height: 1)
            let theirs = FileRecord(id: Identifier.make(), contentType: "image/png", size: 1, width: 1, height: 1)
            try await FileStore(database: database).insert(mine, ownerID: me, now: 1)
            try await FileStore(database: database).insert(theirs, ownerID: other, now: 1)
            await #expect(throws: UserError.avatarNotFound) {
                try await users.updateProfile(of: me, name: "Renamed", avatar: .set(fileID: theirs.id))
            }
            #expect(try await users.profile(of: me).name == "Me")
            let updated = try await users.updateProfile(of: me, name: " Renamed ", avatar: .set(fileID: mine.id))
            #expect(updated.name == "Renamed" && updated.avatarUrl?.contains(mine.id) == true)
            #expect(try await users.updateProfile(of: me, name: nil, avatar: .remove).avatarUrl == nil)
            await #expect(throws: UserError.accountGone) { try await users.profile(of: Identifier.make()) }
            await #expect(throws: UserError.userNotFound) { try await users.publicProfile(of: "nope") }
            #expect(try await users.profiles(of: [other, Identifier.make()]).keys.sorted() == [other])
        }
    }
}
