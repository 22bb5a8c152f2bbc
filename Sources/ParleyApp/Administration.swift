import ChatService
import Foundation
public import Logging
public import ParleyCore
import ParleyStore
import UserService

/// The key that signs access tokens, loaded as the server loads it. The one call to change when the key's home moves.
func loadSigningKey(configuration: ParleyConfiguration, database: Database) async throws -> SigningKey {
    try await ConfiguredSigningKeys(currentPEM: configuration.jwtPrivateKeyPEM, previousPEM: configuration.jwtPreviousKeyPEM)
        .load(database: database, dataDirectory: configuration.dataDirectory)
}

/// Opens and migrates the configured database, runs `body`, and closes it.
func withMigratedDatabase<T: Sendable>(configuration: ParleyConfiguration, logger: Logger, _ body: (Database) async throws -> T) async throws -> T {
    let database = try await Database.open(configuration.database, sqliteSynchronous: configuration.sqliteSynchronous, logger: logger)
    return try await database.closing {
        try await Migrator.migrate(database, logger: logger)
        return try await body(database)
    }
}

/// `parley users create`: makes `count` accounts and writes one JSON line per user, with an access token valid `tokenTTL` seconds.
public func createUsers(
    count: Int,
    namePrefix: String,
    tokenTTL: Int,
    configuration: ParleyConfiguration,
    logger: Logger,
    output: @escaping (String) -> Void
) async throws {
    try await withMigratedDatabase(configuration: configuration, logger: logger) { database in
        let key = try await loadSigningKey(configuration: configuration, database: database)
        let tokens = await TokenIssuer(key: key, accessTokenLifetime: tokenTTL, refreshTokenLifetime: configuration.refreshTokenTTLSeconds)
        try await UserAdministration(database: database).createUsers(count: count, namePrefix: namePrefix) { users in
            for user in users {
                let token = try await tokens.accessToken(for: user.id)
                output(
                    #"{"id":"# + JSONText.quote(user.id) + #","email":"# + JSONText.quote(user.email) + #","name":"# + JSONText.quote(user.name)
                        + #","accessToken":"# + JSONText.quote(token) + "}"
                )
            }
        }
    }
}

/// `parley seed-history`: fills `chatID`, or the direct chat between `between`, with `count` messages; returns the chat id and last seq.
public func seedHistory(
    chatID: String?,
    between: (String, String)?,
    count: Int,
    configuration: ParleyConfiguration,
    logger: Logger,
    progress: @escaping (Int64) -> Void
) async throws -> (chatID: String, lastSeq: Int64) {
    try await withMigratedDatabase(configuration: configuration, logger: logger) { database in
        let seeder = HistorySeeder(database: database)
        let id: String
        if let chatID {
            id = chatID
        } else if let between {
            try await UserAdministration(database: database).requireUsers([between.0, between.1])
            id = try await seeder.directChat(between: between.0, and: between.1)
        } else {
            throw ConfigurationError("--chat", "or --between is required")
        }
        return (id, try await seeder.seed(chatID: id, count: count, progress: progress))
    }
}
