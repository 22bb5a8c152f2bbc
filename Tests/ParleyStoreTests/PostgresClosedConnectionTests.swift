import ParleyTestSupport
import SQLKit
import Synchronization
import Testing

@testable import ParleyStore

/// PostgreSQL can close a connection under a transaction (a restart, a failover, an administrator ending a backend). A
/// statement then run on it must fail, so that the transaction ends and the writer goes on: one that waited for ever
/// held every send of a chat instance behind it after a PostgreSQL restart in the cluster tests.
///
/// PostgreSQL only: SQLite's connections are files in this process, and nothing closes them from outside.
@Suite struct PostgresClosedConnectionTests {
    /// The statement runs once the connection's channel has closed. Without ``OpenConnectionSQLDatabase`` it never
    /// returned (postgres-nio wrote it to the closed channel unseen), and cancelling could not end it; so the whole body
    /// runs in a task of its own, and the test waits for it a minute at most instead of for ever.
    @Test func aStatementOnAConnectionPostgreSQLHasClosedFailsInsteadOfWaitingForEver() async throws {
        let outcome = await Self.within(.seconds(60)) { hazard in
            try await TestDatabases.with(.postgres) { database in
                let failure: String? = await {
                    do {
                        try await database.transaction { sql in
                            try await Self.endBackend(of: sql, from: database)
                            // The server's close reaches this process, and the channel's handlers are removed.
                            try await Task.sleep(for: .milliseconds(500))
                            hazard()
                            _ = try await sql.raw("SELECT 1 AS one").first()
                        }
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }()
                #expect(failure?.contains("closed") == true, "the statement should fail for the closed connection: \(failure ?? "it returned")")
                // The pool drops the closed connection; the next statements run on a new one.
                try await database.ping()
                try await database.transaction { sql in try await sql.raw("CREATE TABLE after_close (x INTEGER)").run() }
            }
        }
        #expect(outcome == .returned)
    }

    /// The other order: the connection closes while its statement is under way. The handler still holds the statement
    /// then, and fails it; this keeps that true through the wrapper, which sends the statement from the event loop.
    @Test func aStatementUnderWayWhenPostgreSQLClosesItsConnectionFails() async throws {
        let outcome = await Self.within(.seconds(60)) { hazard in
            try await TestDatabases.with(.postgres) { database in
                let started = ContinuousClock.now
                await #expect(throws: (any Error).self) {
                    try await database.transaction { sql in
                        let pid = try await Self.backendPID(of: sql)
                        hazard()
                        async let ended: Void = {
                            try await Task.sleep(for: .milliseconds(300))
                            try await Self.terminate(pid, from: database)
                        }()
                        // Far longer than the test waits: only the close can end it.
                        try await sql.raw("SELECT pg_sleep(60)").run()
                        try await ended
                    }
                }
                #expect(ContinuousClock.now - started < .seconds(20))
                try await database.ping()
            }
        }
        #expect(outcome == .returned)
    }

    static func backendPID(of sql: any SQLDatabase) async throws -> Int32 {
        try #require(try await sql.raw("SELECT pg_backend_pid() AS pid").first()).decode(column: "pid", as: Int32.self)
    }

    static func terminate(_ pid: Int32, from database: Database) async throws {
        let ended = try await database.read { other in
            try await other.raw("SELECT pg_terminate_backend(\(bind: pid)) AS ended").first()?.decode(column: "ended", as: Bool.self)
        }
        #expect(ended == true)
    }

    /// Ends the server process behind `sql`'s connection from another connection of the pool.
    static func endBackend(of sql: any SQLDatabase, from database: Database) async throws {
        try await Self.terminate(try await Self.backendPID(of: sql), from: database)
    }

    enum Outcome: Equatable {
        case returned
        case threw(String)
        case timedOut
    }

    /// Runs `body` in a task of its own and waits for it at most `limit` after it calls `hazard` (before the step that
    /// could hang; the set-up before it waits its turn among the tests running in parallel): a body that never returns
    /// (and ignores cancellation) is left behind, and the test fails instead of holding the whole run.
    static func within(
        _ limit: Duration,
        _ body: @escaping @Sendable (_ hazard: @escaping @Sendable () -> Void) async throws -> Void
    ) async -> Outcome {
        await withCheckedContinuation { continuation in
            let waiting = Mutex<CheckedContinuation<Outcome, Never>?>(continuation)
            let finish: @Sendable (Outcome) -> Void = { outcome in waiting.withLock { $0.take() }?.resume(returning: outcome) }
            let (hazards, hazardContinuation) = AsyncStream.makeStream(of: Void.self)
            let timer = Task {
                for await _ in hazards { break }
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                finish(.timedOut)
            }
            Task {
                do {
                    try await body { hazardContinuation.yield() }
                    finish(.returned)
                } catch {
                    finish(.threw("\(error)"))
                }
                hazardContinuation.finish()
                timer.cancel()
            }
        }
    }
}
