public import Logging
public import ParleyCore
import ParleyStore

/// Opens the configured database, applies the migrations it lacks, and closes it.
public func migrateDatabase(configuration: ParleyConfiguration, logger: Logger) async throws -> [Int] {
    let database = try await Database.open(configuration.database, sqliteSynchronous: configuration.sqliteSynchronous, logger: logger)
    return try await database.closing {
        try await Migrator.migrate(database, logger: logger)
    }
}
