import Foundation
public import Logging
import Metrics
import NIOCore
import NIOPosix
public import ParleyCore
import PostgresKit
public import PostgresNIO
public import SQLKit
import SQLiteKit
public import ServiceLifecycle
import Synchronization

/// The database behind every service: one SQLKit code path over embedded SQLite or a PostgreSQL server.
///
/// A database is used in one of two ways: as a `Service` in the process's service group (its ``run()`` keeps the
/// PostgreSQL pool going and closes the connections after every other service has stopped), or for the length of one
/// body with ``closing(_:)`` (commands, set-up and tests).
public final class Database: Service, Sendable {
    /// Which engine is underneath, for the few statements that differ.
    public enum Dialect: Sendable {
        case sqlite, postgres
    }

    public let dialect: Dialect
    private let backend: Backend
    private let logger: Logger
    /// How long statements wait for a connection: SQLite's one writer, or a connection of the PostgreSQL pool.
    private let connectionWait: Metrics.Timer

    private enum Backend: Sendable {
        case sqlite(SQLiteBackend)
        /// The pool: statements wait until ``Database/run()`` (or ``Database/closing(_:)``) runs it.
        case postgres(PostgresClient)
    }

    private init(dialect: Dialect, backend: Backend, logger: Logger) {
        self.dialect = dialect
        self.backend = backend
        self.logger = logger
        self.connectionWait = Metrics.Timer(
            label: ParleyMetrics.Names.connectionWait,
            dimensions: [("pool", dialect == .sqlite ? "sqlite_writer" : "postgres")],
            factory: ParleyMetrics.factory
        )
    }

    /// Opens the database at `location`. A PostgreSQL pool serves statements once ``run()`` or ``closing(_:)`` runs it.
    public static func open(_ location: DatabaseLocation, sqliteSynchronous: String = "full", logger: Logger) async throws -> Database {
        switch location {
        case .sqlite(let path):
            let backend = try await SQLiteBackend.open(path: path, synchronous: sqliteSynchronous, logger: logger)
            return Database(dialect: .sqlite, backend: .sqlite(backend), logger: logger)
        case .postgres(let url):
            guard let sqlConfiguration = try? SQLPostgresConfiguration(url: url) else {
                throw ConfigurationError("PARLEY_DATABASE_URL", "is not a PostgreSQL URL this server can use")
            }
            let core = sqlConfiguration.coreConfiguration
            guard let host = core.host, let port = core.port else {
                throw ConfigurationError("PARLEY_DATABASE_URL", "needs a host name")
            }
            let tls: PostgresClient.Configuration.TLS =
                switch (core.tls.isEnforced, core.tls.isAllowed) {
                case (true, _): .require(core.tls.sslContext!.configuration)
                case (_, true): .prefer(core.tls.sslContext!.configuration)
                default: .disable
                }
            var configuration = PostgresClient.Configuration(
                host: host,
                port: port,
                username: core.username,
                password: core.password,
                database: core.database,
                tls: tls
            )
            // Small pools: statements are short, and PostgreSQL's own backends need the host's cores more than waiting connections do.
            configuration.options.maximumConnections = 16
            configuration.options.minimumConnections = 0
            configuration.options.connectionIdleTimeout = .seconds(60)
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            return Database(dialect: .postgres, backend: .postgres(client), logger: logger)
        }
    }

    /// Runs `body` on a connection outside any transaction (each statement is atomic on its own).
    public func read<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T {
        switch self.backend {
        case .sqlite(let backend):
            return try await body(backend.reader())
        case .postgres(let client):
            let asked = ContinuousClock.now
            return try await client.withConnection { connection in
                self.connectionWait.record(duration: ContinuousClock.now - asked)
                return try await body(OpenConnectionSQLDatabase(connection, logger: self.logger))
            }
        }
    }

    /// Runs `body` in one transaction: all of it is committed, or none of it when `body` throws.
    ///
    /// On SQLite, write transactions take turns on the one writer connection, in order of arrival, except that those
    /// with `priority` (the message writer's batches) go ahead of every other waiting one: a flood of other writes
    /// (`/login` requests, each with its fsync) then delays a batch by at most the one transaction under way. PostgreSQL
    /// runs transactions side by side and ignores it.
    public func transaction<T: Sendable>(priority: Bool = false, _ body: (any SQLDatabase) async throws -> T) async throws -> T {
        switch self.backend {
        case .sqlite(let backend):
            let asked = ContinuousClock.now
            return try await backend.withWriter(priority: priority) { writer in
                self.connectionWait.record(duration: ContinuousClock.now - asked)
                try await self.beginOnWriter(writer)
                do {
                    let result = try await body(writer)
                    try await writer.raw("COMMIT").run()
                    return result
                } catch {
                    do {
                        // In a task of its own: a cancelled caller (a service stopping) makes every statement of its own
                        // task throw CancellationError, the ROLLBACK too, which left the one writer inside a transaction.
                        try await Task { try await writer.raw("ROLLBACK").run() }.value
                    } catch let rollbackError {
                        // The transaction stays open on the one writer; the next BEGIN ends it (see beginOnWriter).
                        self.logger.error("SQLite ROLLBACK failed", metadata: ["error": "\(rollbackError)", "cause": "\(error)"])
                    }
                    throw error
                }
            }
        case .postgres(let client):
            let asked = ContinuousClock.now
            return try await client.withConnection { connection in
                self.connectionWait.record(duration: ContinuousClock.now - asked)
                let sql = OpenConnectionSQLDatabase(connection, logger: self.logger)
                try await sql.raw("BEGIN").run()
                do {
                    let result = try await body(sql)
                    try await sql.raw("COMMIT").run()
                    return result
                } catch {
                    // As on SQLite, in a task of its own: a cancelled caller's ROLLBACK would throw before it ran, and the
                    // connection would go back to the pool inside the transaction.
                    try? await Task { try await sql.raw("ROLLBACK").run() }.value
                    throw error
                }
            }
        }
    }

    /// Starts a write transaction on SQLite's one writer connection. IMMEDIATE takes the write lock up front, so two
    /// processes on one file wait for each other instead of failing. Should a transaction have been left open on the
    /// connection (its COMMIT and its ROLLBACK both failed; its caller had the error), every later write would be refused
    /// for ever: it is rolled back, loudly, and the new one begins.
    func beginOnWriter(_ writer: any SQLDatabase) async throws {
        do {
            try await writer.raw("BEGIN IMMEDIATE").run()
        } catch let error where String(describing: error).contains("within a transaction") {
            self.logger.error("the SQLite writer was left inside a transaction; rolling it back")
            try await writer.raw("ROLLBACK").run()
            try await writer.raw("BEGIN IMMEDIATE").run()
        }
    }

    /// Runs `body` on SQLite's writer connection while holding it, outside any transaction this type starts: for tests
    /// that leave it in a bad state on purpose. Nil on PostgreSQL.
    func withSQLiteWriter<T: Sendable>(_ body: (any SQLDatabase) async throws -> T) async throws -> T? {
        guard case .sqlite(let backend) = self.backend else { return nil }
        return try await backend.withWriter { try await body($0) }
    }

    /// Runs `body` on one PostgreSQL connection of the pool (for `LISTEN`); nil on SQLite, which has no such thing.
    public func withPostgresConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T? {
        guard case .postgres(let client) = self.backend else { return nil }
        return try await client.withConnection { connection in try await body(connection) }
    }

    /// Checks that the database answers, for `/health`.
    public func ping() async throws {
        try await self.read { sql in
            _ = try await sql.raw("SELECT 1 AS one").first()
        }
    }

    /// Serves statements until graceful shutdown, then closes the connections: the database goes last, after
    /// everything that uses it.
    public func run() async throws {
        switch self.backend {
        case .sqlite(let backend):
            // Checkpoints the WAL here, beside the writer, rather than in whichever commit passes the threshold.
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try? await Task.sleep(for: SQLiteBackend.checkpointInterval)
                    guard !Task.isCancelled else { break }
                    do {
                        try await backend.checkpoint()
                    } catch {
                        self.logger.warning("WAL checkpoint failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            await backend.close()
        case .postgres(let client):
            // Cancelling the pool's run closes its connections.
            await cancelWhenGracefulShutdown {
                await client.run()
            }
        }
    }

    /// Closes an SQLite database opened without ``run()`` or ``closing(_:)``; the database is not usable afterwards.
    public func close() async {
        if case .sqlite(let backend) = self.backend {
            await backend.close()
        }
    }
}

/// One writer connection behind a lock, a few reader connections (SQLite in WAL mode lets readers run beside the
/// writer), and one that checkpoints the WAL.
///
/// Checkpoints: SQLite's default copies the WAL back into the database inside the commit that takes it past 1,000
/// pages, while that commit holds the write lock, so every few hundred small transactions one of them (perhaps a batch
/// of messages) waits for pages to be copied and the database file synced: under a `/login` flood that showed as
/// 60–250 ms stalls of a conversation. Here a passive checkpoint runs every ``checkpointInterval`` on its own
/// connection, beside the writer (it takes no write lock, and leaves alone what a reader still uses); the automatic one
/// stays only as a bound on the WAL's size, at ``autoCheckpointPages``, should the passive ones fall behind or not run.
///
/// Threads: SQLite's calls block a thread. The writer has a thread of its own; the readers and the checkpointer share
/// a pool of their own. So a write never waits for a thread behind a checkpoint's syncs or slow reads, as it did on
/// SwiftNIO's shared pool (a thread per core, also used by the readers, the checkpointer and file I/O).
final class SQLiteBackend: Sendable {
    private let writer: SQLiteConnection
    private let readers: [SQLiteConnection]
    private let checkpointer: SQLiteConnection
    /// The writer's thread, and the readers' and checkpointer's.
    private let threads: [NIOThreadPool]
    private let writeLock = AsyncLock()
    private let nextReader = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)

    /// How often the WAL is checkpointed beside the writer.
    static let checkpointInterval = Duration.milliseconds(500)
    /// The WAL size (4 KiB pages) at which a commit checkpoints after all: 40 MiB.
    static let autoCheckpointPages = 10_000

    /// The readers beside the writer.
    static let readerCount = 2

    private init(writer: SQLiteConnection, readers: [SQLiteConnection], checkpointer: SQLiteConnection, threads: [NIOThreadPool]) {
        self.writer = writer
        self.readers = readers
        self.checkpointer = checkpointer
        self.threads = threads
    }

    /// Copies what it can of the WAL into the database file without waiting for a lock (`PASSIVE`).
    func checkpoint() async throws {
        _ = try await self.checkpointer.sql(queryLogLevel: nil).raw("PRAGMA wal_checkpoint(PASSIVE)").all()
    }

    static func open(path: String, synchronous: String, logger: Logger) async throws -> SQLiteBackend {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let writerThread = NIOThreadPool(numberOfThreads: 1)
        let otherThreads = NIOThreadPool(numberOfThreads: Self.readerCount + 1)
        writerThread.start()
        otherThreads.start()
        func connect(on threads: NIOThreadPool) async throws -> SQLiteConnection {
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path),
                threadPool: threads,
                logger: logger,
                on: MultiThreadedEventLoopGroup.singleton.any()
            )
            let sql = connection.sql(queryLogLevel: nil)
            // Split services share the file: wait for another process's write lock instead of failing at once.
            try await sql.raw("PRAGMA busy_timeout = 10000").run()
            try await sql.raw("PRAGMA foreign_keys = ON").run()
            try await sql.raw(SQLQueryString("PRAGMA synchronous = \(unsafeRaw: synchronous.uppercased())")).run()
            return connection
        }
        let writer = try await connect(on: writerThread)
        try await writer.sql(queryLogLevel: nil).raw("PRAGMA journal_mode = WAL").run()
        try await writer.sql(queryLogLevel: nil).raw(SQLQueryString("PRAGMA wal_autocheckpoint = \(unsafeRaw: String(Self.autoCheckpointPages))"))
            .run()
        var readers: [SQLiteConnection] = []
        for _ in 0..<Self.readerCount { readers.append(try await connect(on: otherThreads)) }
        let checkpointer = try await connect(on: otherThreads)
        try await checkpointer.sql(queryLogLevel: nil).raw("PRAGMA wal_autocheckpoint = 0").run()
        return SQLiteBackend(writer: writer, readers: readers, checkpointer: checkpointer, threads: [writerThread, otherThreads])
    }

    func reader() -> any SQLDatabase {
        let index = self.nextReader.wrappingAdd(1, ordering: .relaxed).oldValue
        return self.readers[index % self.readers.count].sql(queryLogLevel: nil)
    }

    func withWriter<T>(priority: Bool = false, _ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await self.writeLock.withLock(priority: priority) {
            try await body(self.writer.sql(queryLogLevel: nil))
        }
    }

    /// Closes the connections, once however often it is called.
    func close() async {
        guard !self.closed.exchange(true, ordering: .relaxed) else { return }
        for connection in [self.writer, self.checkpointer] + self.readers {
            try? await connection.close()
        }
        for threads in self.threads { try? await threads.shutdownGracefully() }
    }
}

extension Database {
    /// Runs `body` with the database serving, then closes it whatever happens: for commands, set-up and tests.
    public func closing<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        switch self.backend {
        case .sqlite(let backend):
            do {
                let result = try await body()
                await backend.close()
                return result
            } catch {
                await backend.close()
                throw error
            }
        case .postgres(let client):
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                return try await body()
            }
        }
    }
}
