import ParleyTestSupport
import SQLKit
import Testing

@testable import ParleyStore

/// SQLite has one writer connection: a transaction left open on it (its COMMIT and ROLLBACK both failed) must not refuse
/// every later write ("cannot start a transaction within a transaction", seen once in a CI run's file sweeps).
@Suite struct SQLiteWriterTests {
    @Test func aTransactionLeftOpenOnTheWriterIsRolledBackByTheNextOne() async throws {
        try await TestDatabases.with(.sqlite) { database in
            try await database.transaction { sql in try await sql.raw("CREATE TABLE leftover (x INTEGER NOT NULL)").run() }
            let left = try await database.withSQLiteWriter { sql in
                try await sql.raw("BEGIN").run()
                try await sql.raw("INSERT INTO leftover (x) VALUES (1)").run()
                return true
            }
            #expect(left == true)
            // The writer is inside a transaction now: a plain BEGIN says so.
            await #expect(throws: (any Error).self) {
                _ = try await database.withSQLiteWriter { sql in try await sql.raw("BEGIN").run() }
            }
            try await database.transaction { sql in try await sql.raw("INSERT INTO leftover (x) VALUES (2)").run() }
            let values = try await database.read { sql in
                try await sql.raw("SELECT x FROM leftover ORDER BY x").all().map { try $0.decode(column: "x", as: Int.self) }
            }
            // The abandoned write is gone (never committed), the new one is there, and writes go on.
            #expect(values == [2])
            try await database.transaction { sql in try await sql.raw("INSERT INTO leftover (x) VALUES (3)").run() }
        }
    }

    /// SQLite's calls block a thread. With the writer on SwiftNIO's shared pool (a thread per core), slow reads holding
    /// every thread held a write up until one of them finished; the writer has a thread of its own. Told by order, not by
    /// time (a loaded CI machine stretches both): the write is done while every read is still running.
    @Test func aWriteDoesNotWaitForSlowReads() async throws {
        try await TestDatabases.with(.sqlite) { database in
            try await database.transaction { sql in try await sql.raw("CREATE TABLE quick (x INTEGER NOT NULL)").run() }
            // Four reads of a second or more each (idle): more than the readers' threads, and than a 2-core machine's
            // shared pool.
            let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000) SELECT count(*) AS n FROM c"
            let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
            try await withThrowingTaskGroup(of: ContinuousClock.Instant.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        _ = try await database.read { sql in
                            startedContinuation.yield()
                            return try await sql.raw(SQLQueryString(slow)).all()
                        }
                        return ContinuousClock.now
                    }
                }
                // Every read has its connection (a reader's thread, or a place in the queue for one).
                var count = 0
                for await _ in started {
                    count += 1
                    if count == 2 { break }
                }
                try await Task.sleep(for: .milliseconds(100))
                try await database.transaction { sql in try await sql.raw("INSERT INTO quick (x) VALUES (1)").run() }
                let written = ContinuousClock.now
                var reads: [ContinuousClock.Instant] = []
                for try await read in group { reads.append(read) }
                let firstRead = try #require(reads.min())
                #expect(written < firstRead, "the write ended \(firstRead - written) after the first read: it waited for a thread")
            }
        }
    }

    /// A caller cancelled inside its transaction (a service told to stop) throws, and its transaction is rolled back: the
    /// writer is left outside any transaction (a plain BEGIN works), not for the next transaction to clean up.
    @Test func aCancelledTransactionIsRolledBack() async throws {
        try await TestDatabases.with(.sqlite) { database in
            try await database.transaction { sql in try await sql.raw("CREATE TABLE cancelled (x INTEGER NOT NULL)").run() }
            try await Self.cancelInsideATransaction(database)
            let plainBegin = try await database.withSQLiteWriter { sql in
                try await sql.raw("BEGIN").run()
                try await sql.raw("ROLLBACK").run()
                return true
            }
            #expect(plainBegin == true)
            let count = try await database.read { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM cancelled").first()?.decode(column: "n", as: Int.self)
            }
            #expect(count == 0)
        }
    }

    /// On PostgreSQL a connection left inside a cancelled caller's transaction went back to the pool, and the next
    /// transaction on it (a BEGIN there is only a warning) committed the cancelled caller's writes with its own.
    @Test func aCancelledTransactionOnPostgreSQLCommitsNothingLater() async throws {
        try await TestDatabases.with(.postgres) { database in
            try await database.transaction { sql in
                try await sql.raw("CREATE TABLE cancelled (x INTEGER NOT NULL)").run()
                try await sql.raw("CREATE TABLE later (x INTEGER NOT NULL)").run()
            }
            try await Self.cancelInsideATransaction(database)
            for value in 0..<10 {
                try await database.transaction { sql in try await sql.raw("INSERT INTO later (x) VALUES (\(bind: value))").run() }
            }
            let counts = try await database.read { sql in
                try await sql.raw("SELECT (SELECT COUNT(*) FROM cancelled) AS c, (SELECT COUNT(*) FROM later) AS l").first().map {
                    (try $0.decode(column: "c", as: Int.self), try $0.decode(column: "l", as: Int.self))
                }
            }
            #expect(counts?.0 == 0 && counts?.1 == 10)
        }
    }

    /// A caller that inserts a row into `cancelled` in a transaction, and is cancelled while it is still inside it.
    static func cancelInsideATransaction(_ database: Database) async throws {
        let (inside, insideContinuation) = AsyncStream.makeStream(of: Void.self)
        let writer = Task {
            try await database.transaction { sql in
                try await sql.raw("INSERT INTO cancelled (x) VALUES (1)").run()
                insideContinuation.yield()
                try await Task.sleep(for: .seconds(30))
            }
        }
        for await _ in inside { break }
        writer.cancel()
        await #expect(throws: CancellationError.self) { try await writer.value }
    }
}
