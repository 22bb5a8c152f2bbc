import Foundation
public import Logging
public import ParleyCore
public import ParleyStore
import SQLKit
public import Testing

/// The two databases every storage test runs on.
public enum DatabaseKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    public var testDescription: String { self.rawValue }
}

/// Fresh, migrated databases for tests: a temporary SQLite file, or a new database on the test PostgreSQL server.
public enum TestDatabases {
    public static let logger = Logger(label: "test")

    /// Runs `body` with a fresh migrated database of `kind`, then throws it away.
    public static func with<T: Sendable>(_ kind: DatabaseKind, _ body: (Database) async throws -> T) async throws -> T {
        switch kind {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-test-\(Identifier.make())")
            defer { try? FileManager.default.removeItem(at: directory) }
            let database = try await Database.open(.sqlite(path: directory.appendingPathComponent("test.sqlite").path), logger: Self.logger)
            return try await database.closing {
                try await Migrator.migrate(database, logger: Self.logger)
                return try await body(database)
            }
        case .postgres:
            let adminURL = try Self.postgresURL()
            let name = "parley_t_" + Identifier.make().replacingOccurrences(of: "-", with: "").suffix(20)
            try await Self.admin(adminURL, "CREATE DATABASE \(name)")
            var components = URLComponents(string: adminURL)!
            components.path = "/" + name
            let database = try await Database.open(.postgres(url: components.string!), logger: Self.logger)
            let result: Result<T, any Error>
            do {
                result = .success(
                    try await database.closing {
                        try await Migrator.migrate(database, logger: Self.logger)
                        return try await body(database)
                    }
                )
            } catch {
                result = .failure(error)
            }
            try await Self.admin(adminURL, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            return try result.get()
        }
    }

    /// Runs `body` with the location of a fresh, empty database of `kind` (for code that opens the database itself,
    /// such as a whole application), then throws it away.
    public static func withLocation<T: Sendable>(_ kind: DatabaseKind, _ body: (DatabaseLocation) async throws -> T) async throws -> T {
        switch kind {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-test-\(Identifier.make())")
            defer { try? FileManager.default.removeItem(at: directory) }
            return try await body(.sqlite(path: directory.appendingPathComponent("test.sqlite").path))
        case .postgres:
            let adminURL = try Self.postgresURL()
            let name = "parley_t_" + Identifier.make().replacingOccurrences(of: "-", with: "").suffix(20)
            try await Self.admin(adminURL, "CREATE DATABASE \(name)")
            var components = URLComponents(string: adminURL)!
            components.path = "/" + name
            let result: Result<T, any Error>
            do {
                result = .success(try await body(.postgres(url: components.string!)))
            } catch {
                result = .failure(error)
            }
            try await Self.admin(adminURL, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            return try result.get()
        }
    }

    /// The test server's URL; the README's test command starts one and sets it.
    public static func postgresURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["PARLEY_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw TestSetupError("PARLEY_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts PostgreSQL")
        }
        return url
    }

    static func admin(_ url: String, _ statement: String) async throws {
        let database = try await Database.open(.postgres(url: url), logger: Self.logger)
        try await database.closing {
            try await database.read { sql in try await sql.raw(SQLQueryString(statement)).run() }
        }
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
