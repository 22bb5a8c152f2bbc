public import SQLKit

/// Login sessions that ended: every statement on `ended_sessions`. The user service records an ending in the transaction
/// that revokes the session's refresh tokens (logout, reuse detection); every chat instance reads the endings to close
/// that session's sockets and to refuse its access tokens on sockets, until those tokens would have expired anyway.
///
/// A table rather than a bus event alone: the user service may run without the chat service's bus, and an instance that
/// missed a notification (its listener reconnecting) still finds the ending when it next looks.
public struct EndedSessions: Sendable {
    /// Why a session ended, as `sessionEnded` tells its sockets.
    public enum Reason: String, Sendable, Codable {
        case loggedOut = "logged_out"
        case revoked
    }

    /// One ended session.
    public struct Ending: Sendable, Equatable {
        public var sessionID: String
        public var reason: Reason
        /// When it ended, in milliseconds since 1970.
        public var endedAt: Int64
    }

    public let database: Database

    /// Uses `database`.
    public init(database: Database) {
        self.database = database
    }

    /// Records that `sessionID` of `userID` ended; the first reason stays.
    public static func record(sessionID: String, userID: String, reason: Reason, now: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw(
            """
            INSERT INTO ended_sessions (session_id, user_id, reason, ended_at) VALUES (\(bind: sessionID), \(bind: userID), \(bind: reason.rawValue), \(bind: now))
            ON CONFLICT (session_id) DO NOTHING
            """
        ).run()
    }

    /// Why `sessionID` ended, or nil while it lasts.
    public func ending(of sessionID: String) async throws -> Reason? {
        try await self.database.read { sql in
            try await sql.raw("SELECT reason FROM ended_sessions WHERE session_id = \(bind: sessionID)").first()
                .flatMap { Reason(rawValue: try $0.decode(column: "reason", as: String.self)) }
        }
    }

    /// The sessions that ended at or after `since` (milliseconds since 1970), oldest first.
    public func endings(since: Int64) async throws -> [Ending] {
        try await self.database.read { sql in
            try await sql.raw(
                "SELECT session_id, reason, ended_at FROM ended_sessions WHERE ended_at >= \(bind: since) ORDER BY ended_at LIMIT 10000"
            ).all().compactMap { row in
                guard let reason = Reason(rawValue: try row.decode(column: "reason", as: String.self)) else { return nil }
                return Ending(
                    sessionID: try row.decode(column: "session_id", as: String.self),
                    reason: reason,
                    endedAt: try row.decode(column: "ended_at", as: Int64.self)
                )
            }
        }
    }

    /// Forgets the endings before `cutoff`: no access token of those sessions is valid any more.
    public func prune(before cutoff: Int64) async throws {
        try await self.database.transaction { sql in
            try await sql.raw("DELETE FROM ended_sessions WHERE ended_at < \(bind: cutoff)").run()
        }
    }
}
