import Foundation
import ParleyCore
import ParleyTestSupport
import SQLKit
import ServiceLifecycle
import Testing

@testable import ParleyStore

@Suite("Storage on SQLite and PostgreSQL")
struct StorageTests {
    @Test("migrations create the schema once; running them again applies nothing", arguments: DatabaseKind.allCases)
    func migrationsAreIdempotent(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let again = try await Migrator.migrate(database, logger: TestDatabases.logger)
            #expect(again.isEmpty)
            let versions = try await database.read { sql in
                try await sql.raw("SELECT version FROM schema_migrations ORDER BY version").all().map {
                    try $0.decode(column: "version", as: Int.self)
                }
            }
            #expect(versions == Schema.migrations.map(\.version))
        }
    }

    @Test("concurrent migrations from several starts apply each step once", arguments: DatabaseKind.allCases)
    func concurrentMigrations(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let results = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 { group.addTask { try await Migrator.migrate(database, logger: TestDatabases.logger) } }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(results.isEmpty)
        }
    }

    @Test("a transaction that throws leaves nothing behind", arguments: DatabaseKind.allCases)
    func transactionRollsBack(kind: DatabaseKind) async throws {
        struct Boom: Error {}
        try await TestDatabases.with(kind) { database in
            await #expect(throws: Boom.self) {
                try await database.transaction { sql in
                    try await sql.raw("INSERT INTO rate_limits (bucket, window_start, hits) VALUES ('x', 1, 1)").run()
                    throw Boom()
                }
            }
            let count = try await database.read { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM rate_limits").first()!.decode(column: "n", as: Int.self)
            }
            #expect(count == 0)
        }
    }

    @Test("the rate limiter allows the limit per window, then answers the seconds to wait", arguments: DatabaseKind.allCases)
    func rateLimiterCountsPerWindow(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let start: Int64 = 1_000_000
            var answers: [Int?] = []
            for offset in 0..<4 {
                answers.append(
                    try await database.transaction { sql in
                        try await RateLimiter.hit(bucket: "b", limit: 3, windowSeconds: 60, now: start + Int64(offset) * 1000, in: sql)
                    }
                )
            }
            #expect(answers == [nil, nil, nil, 57])
            let afterWindow = try await database.transaction { sql in
                try await RateLimiter.hit(bucket: "b", limit: 3, windowSeconds: 60, now: start + 60_000, in: sql)
            }
            #expect(afterWindow == nil)
        }
    }

    @Test("pruning forgets only counters of windows that started before the cutoff", arguments: DatabaseKind.allCases)
    func rateLimiterPrunes(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let day: Int64 = 86_400_000
            try await database.transaction { sql in
                _ = try await RateLimiter.hit(bucket: "old", limit: 3, windowSeconds: 600, now: 10 * day, in: sql)
                _ = try await RateLimiter.hit(bucket: "recent", limit: 3, windowSeconds: 600, now: 12 * day, in: sql)
                try await RateLimiter.prune(before: 12 * day - 1, in: sql)
            }
            let buckets = try await database.read { sql in
                try await sql.raw("SELECT bucket FROM rate_limits").all().map { try $0.decode(column: "bucket", as: String.self) }
            }
            #expect(buckets == ["recent"])
        }
    }

    @Test("concurrent hits on one bucket are all counted", arguments: DatabaseKind.allCases)
    func rateLimiterUnderConcurrency(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let limited = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await database.transaction { sql in
                            try await RateLimiter.hit(bucket: "c", limit: 10, windowSeconds: 60, now: 5_000, in: sql)
                        } != nil
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(limited == 10)
        }
    }

    @Test("claimed mail jobs are not claimed again until their lease runs out", arguments: DatabaseKind.allCases)
    func outboxLeases(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let outbox = MailOutbox(database: database)
            try await database.transaction { sql in
                try await MailOutbox.enqueue(template: "t", recipient: "a@b.co", payload: "{}", requestID: "r1", now: 100, in: sql)
            }
            let first = try await outbox.claim(worker: "w1", limit: 10, leaseMillis: 1000, now: 200)
            #expect(first.count == 1)
            #expect(first.first?.attempts == 1)
            #expect(first.first?.requestID == "r1")
            #expect(try await outbox.claim(worker: "w2", limit: 10, leaseMillis: 1000, now: 300).isEmpty)
            // w1 died: after the lease another worker takes the job over.
            let taken = try await outbox.claim(worker: "w2", limit: 10, leaseMillis: 1000, now: 1300)
            #expect(taken.map(\.id) == first.map(\.id))
            #expect(taken.first?.attempts == 2)
            // The late w1 can no longer record an outcome for a job it lost.
            try await outbox.markSent(first[0], worker: "w1", now: 1400)
            #expect(try await outbox.counts() == ["sending": 1])
            try await outbox.markSent(taken[0], worker: "w2", now: 1400)
            #expect(try await outbox.counts() == ["sent": 1])
        }
    }

    @Test("a worker that renews its leases keeps its jobs; another worker cannot take them", arguments: DatabaseKind.allCases)
    func outboxLeaseRenewal(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let outbox = MailOutbox(database: database)
            try await database.transaction { sql in
                try await MailOutbox.enqueue(template: "t", recipient: "a@b.co", payload: "{}", requestID: nil, now: 0, in: sql)
            }
            #expect(try await outbox.claim(worker: "w1", limit: 10, leaseMillis: 1000, now: 0).count == 1)
            try await outbox.renewLeases(worker: "w1", leaseMillis: 1000, now: 900)
            #expect(try await outbox.claim(worker: "w2", limit: 10, leaseMillis: 1000, now: 1500).isEmpty)
            // Another worker's renewal does not touch w1's job.
            try await outbox.renewLeases(worker: "w2", leaseMillis: 5000, now: 1500)
            #expect(try await outbox.claim(worker: "w2", limit: 10, leaseMillis: 1000, now: 1901).count == 1)
        }
    }

    @Test("a job whose worker died during its last allowed attempt is given up, not retried forever", arguments: DatabaseKind.allCases)
    func outboxAbandonedLastAttempt(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let outbox = MailOutbox(database: database)
            try await database.transaction { sql in
                try await MailOutbox.enqueue(template: "t", recipient: "a@b.co", payload: "{\"code\":1}", requestID: nil, now: 0, in: sql)
            }
            #expect(try await outbox.claim(worker: "w1", limit: 1, leaseMillis: 100, now: 0, maxAttempts: 2).count == 1)
            // w1 died; w2 takes the job for its second and last attempt, and dies too.
            #expect(try await outbox.claim(worker: "w2", limit: 1, leaseMillis: 100, now: 200, maxAttempts: 2).first?.attempts == 2)
            #expect(try await outbox.claim(worker: "w3", limit: 1, leaseMillis: 100, now: 400, maxAttempts: 2).isEmpty)
            let row = try await database.read { sql in try await sql.raw("SELECT status, payload FROM mail_outbox").first()! }
            #expect(try row.decode(column: "status", as: String.self) == "failed")
            #expect(try row.decode(column: "payload", as: String.self) == "{}")
        }
    }

    @Test("a failed job is retried at its time, and given up with its error kept", arguments: DatabaseKind.allCases)
    func outboxRetries(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let outbox = MailOutbox(database: database)
            try await database.transaction { sql in
                try await MailOutbox.enqueue(template: "t", recipient: "a@b.co", payload: "{\"code\":1}", requestID: nil, now: 0, in: sql)
            }
            let job = try #require(try await outbox.claim(worker: "w", limit: 1, leaseMillis: 60_000, now: 0).first)
            try await outbox.markFailed(job, worker: "w", error: "451 later", retryAt: 5_000, now: 1)
            #expect(try await outbox.claim(worker: "w", limit: 1, leaseMillis: 60_000, now: 4_999).isEmpty)
            let again = try #require(try await outbox.claim(worker: "w", limit: 1, leaseMillis: 60_000, now: 5_000).first)
            try await outbox.markFailed(again, worker: "w", error: "550 no such user", retryAt: nil, now: 5_001)
            let row = try await database.read { sql in
                try await sql.raw("SELECT status, last_error, payload FROM mail_outbox").first()!
            }
            #expect(try row.decode(column: "status", as: String.self) == "failed")
            #expect(try row.decode(column: "last_error", as: String.self) == "550 no such user")
            #expect(try row.decode(column: "payload", as: String.self) == "{}")
        }
    }

    @Test("two workers claiming many jobs at once never share one", arguments: DatabaseKind.allCases)
    func outboxConcurrentClaims(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let outbox = MailOutbox(database: database)
            try await database.transaction { sql in
                for index in 0..<200 {
                    try await MailOutbox.enqueue(template: "t", recipient: "u\(index)@b.co", payload: "{}", requestID: nil, now: 0, in: sql)
                }
            }
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in ["w1", "w2", "w3"] {
                    group.addTask {
                        var ids: [String] = []
                        while true {
                            let jobs = try await outbox.claim(worker: worker, limit: 7, leaseMillis: 600_000, now: 10)
                            if jobs.isEmpty { return ids }
                            ids += jobs.map(\.id)
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(claimed.count == 200)
            #expect(Set(claimed).count == 200)
        }
    }
}

/// SQLite's WAL is checkpointed beside the writer, not inside a commit (issue 12: a `/login` flood's commits took turns
/// checkpointing, and a batch of messages behind one waited 60–250 ms).
@Suite struct SQLiteCheckpointTests {
    /// 8 MB in one transaction: 2,000 pages, twice SQLite's default threshold for checkpointing in the commit.
    static func writeEightMegabytes(_ database: Database) async throws {
        try await database.transaction { sql in
            try await sql.raw("CREATE TABLE IF NOT EXISTS ballast (bytes BLOB)").run()
            try await sql.raw(
                """
                INSERT INTO ballast (bytes) SELECT randomblob(4000) FROM
                (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n)
                """
            ).run()
        }
    }

    static func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
    }

    @Test func commitsLeaveTheWALAloneAndTheServiceCheckpointsIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-checkpoint-\(Identifier.make())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("test.sqlite").path
        let database = try await Database.open(.sqlite(path: path), logger: TestDatabases.logger)
        let before = try Self.size(path)
        do {
            try await Self.writeEightMegabytes(database)
        } catch {
            await database.close()
            throw error
        }
        // The commit did not copy the pages into the database file: they wait in the WAL.
        #expect(try Self.size(path) < before + 1_000_000, "the commit checkpointed")
        #expect(try Self.size(path + "-wal") > 8_000_000)
        // The database's service copies them within a few of its rounds, while nothing else writes.
        let services = ServiceGroup(configuration: .init(services: [database], logger: TestDatabases.logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            let deadline = ContinuousClock.now + .seconds(10)
            while (try? Self.size(path)) ?? 0 < before + 8_000_000, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            #expect(try Self.size(path) >= before + 8_000_000, "the service did not checkpoint")
            // A graceful shutdown, as the process has: the service closes the connections.
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
