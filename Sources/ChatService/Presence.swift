public import ParleyCore
public import ParleyStore
import SQLKit
import Synchronization

/// Who is online, as far as every chat instance together knows: each instance reports its own users' comings and goings.
public protocol PresenceRegistry: Sendable {
    /// `userID`'s first socket on this instance connected; true when they were offline everywhere (announce it).
    func arrived(_ userID: String) async throws -> Bool
    /// `userID`'s last socket on this instance went; true when they are now offline everywhere (announce it).
    func departed(_ userID: String) async throws -> Bool
    /// Which of `userIDs` are online anywhere.
    func online(among userIDs: [String]) async throws -> Set<String>
    /// Keeps the entries of this instance's users alive, makes them match who is here (`present()`, asked again at each
    /// decision, since sockets come and go meanwhile), and clears the entries of instances that stopped answering.
    func maintain(present: @Sendable () -> Set<String>) async throws -> PresenceChanges
    /// How often ``maintain(present:)`` must run; nil when there is nothing to maintain.
    var maintenanceInterval: Duration? { get }
}

/// Users to announce after maintenance.
public struct PresenceChanges: Sendable, Equatable {
    public var online: [String] = []
    public var offline: [String] = []
}

/// Presence of a single instance: its own sockets are the whole truth.
public final class LocalPresence: PresenceRegistry {
    private let present = Mutex<Set<String>>([])

    public init() {}

    public func arrived(_ userID: String) async throws -> Bool {
        self.present.withLock { $0.insert(userID).inserted }
    }

    public func departed(_ userID: String) async throws -> Bool {
        self.present.withLock { $0.remove(userID) != nil }
    }

    public func online(among userIDs: [String]) async throws -> Set<String> {
        self.present.withLock { present in Set(userIDs.filter(present.contains)) }
    }

    public func maintain(present: @Sendable () -> Set<String>) async throws -> PresenceChanges { PresenceChanges() }

    public var maintenanceInterval: Duration? { nil }
}

/// Presence shared by chat instances through the database: one row per user and instance, renewed by the instance's
/// heartbeat; rows of an instance that died without saying goodbye expire, and whoever sweeps them announces the user offline.
public struct SharedPresence: PresenceRegistry {
    let database: Database
    /// Unique per process, so a restarted instance never mistakes its predecessor's rows for its own.
    let instanceID: String
    let lifetime: Duration
    /// The time in milliseconds that expiries are reckoned in (tests move it on instead of waiting).
    let now: @Sendable () -> Int64

    /// Presence rows of `instanceID` in `database`, living `lifetime` without a heartbeat.
    public init(database: Database, instanceID: String, lifetime: Duration, now: @escaping @Sendable () -> Int64 = { Timestamp.millis() }) {
        self.database = database
        self.instanceID = instanceID
        self.lifetime = lifetime
        self.now = now
    }

    var lifetimeMillis: Int64 { Int64(self.lifetime.components.seconds) * 1000 }

    public func arrived(_ userID: String) async throws -> Bool {
        let now = self.now()
        try await self.database.transaction { sql in
            try await sql.raw(
                """
                INSERT INTO presence (instance_id, user_id, expires_at)
                VALUES (\(bind: self.instanceID), \(bind: userID), \(bind: now + self.lifetimeMillis))
                ON CONFLICT (user_id, instance_id) DO UPDATE SET expires_at = excluded.expires_at
                """
            ).run()
        }
        // Inserted and committed before looking: of two instances arriving at once, at least one sees no other and announces.
        return try await !self.isPresentElsewhere(userID, now: now)
    }

    public func departed(_ userID: String) async throws -> Bool {
        try await self.database.transaction { sql in
            try await sql.raw("DELETE FROM presence WHERE user_id = \(bind: userID) AND instance_id = \(bind: self.instanceID)").run()
        }
        return try await !self.isPresentElsewhere(userID, now: self.now())
    }

    func isPresentElsewhere(_ userID: String, now: Int64) async throws -> Bool {
        try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT 1 AS one FROM presence
                WHERE user_id = \(bind: userID) AND instance_id <> \(bind: self.instanceID) AND expires_at > \(bind: now) LIMIT 1
                """
            ).first() != nil
        }
    }

    public func online(among userIDs: [String]) async throws -> Set<String> {
        guard !userIDs.isEmpty else { return [] }
        let now = self.now()
        return try await self.database.read { sql in
            var online = Set<String>()
            // In slices, so a user with thousands of contacts never builds one enormous statement.
            for slice in userIDs.slices(of: 500) {
                let rows = try await sql.raw(
                    "SELECT DISTINCT user_id FROM presence WHERE user_id IN (\(binds: Array(slice))) AND expires_at > \(bind: now)"
                ).all()
                for row in rows { online.insert(try row.decode(column: "user_id", as: String.self)) }
            }
            return online
        }
    }

    public func maintain(present: @Sendable () -> Set<String>) async throws -> PresenceChanges {
        let now = self.now()
        var changes = PresenceChanges()
        let recorded = try await self.database.transaction { sql -> Set<String> in
            try await sql.raw(
                "UPDATE presence SET expires_at = \(bind: now + self.lifetimeMillis) WHERE instance_id = \(bind: self.instanceID)"
            ).run()
            return Set(
                try await sql.raw("SELECT user_id FROM presence WHERE instance_id = \(bind: self.instanceID)").all().map {
                    try $0.decode(column: "user_id", as: String.self)
                }
            )
        }
        // Rows another instance swept while this one could not renew them (the database was away): put them back.
        for userID in present().subtracting(recorded) where present().contains(userID) {
            if try await self.arrived(userID) { changes.online.append(userID) }
        }
        // Rows of users no longer here whose departure was not recorded (it failed, or raced with the last heartbeat).
        for userID in recorded.subtracting(present()) where !present().contains(userID) {
            if try await self.departed(userID) { changes.offline.append(userID) }
        }
        let expired = try await self.database.transaction { sql in
            try await sql.raw("DELETE FROM presence WHERE expires_at <= \(bind: now) RETURNING user_id").all().map {
                try $0.decode(column: "user_id", as: String.self)
            }
        }
        for userID in Set(expired) where !present().contains(userID) {
            guard try await !self.isPresentElsewhere(userID, now: now) else { continue }
            changes.offline.append(userID)
        }
        return changes
    }

    public var maintenanceInterval: Duration? { self.lifetime / 3 }
}
