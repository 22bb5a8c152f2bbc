import Foundation
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import Synchronization
import Testing

@testable import ChatService

@Suite("Presence shared by chat instances")
struct PresenceTests {
    @Test(
        "a user is online while any instance holds a socket; offline is announced only when the last one goes",
        arguments: DatabaseKind.allCases
    )
    func onlineWhileAnyInstanceHoldsThem(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database async throws in
            let first = SharedPresence(database: database, instanceID: "chat1-a", lifetime: .seconds(30))
            let second = SharedPresence(database: database, instanceID: "chat2-b", lifetime: .seconds(30))
            #expect(try await first.arrived("u1") == true)
            #expect(try await second.arrived("u1") == false)
            #expect(try await first.online(among: ["u1", "u2"]) == ["u1"])
            #expect(try await first.departed("u1") == false)
            #expect(try await second.online(among: ["u1"]) == ["u1"])
            #expect(try await second.departed("u1") == true)
            #expect(try await second.online(among: ["u1"]).isEmpty)
        }
    }

    @Test(
        "an instance that stops renewing its entries leaves its users offline once they expire, announced once",
        arguments: DatabaseKind.allCases
    )
    func deadInstanceExpires(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database async throws in
            // The dead instance's entries live three seconds; the survivor sweeps. Both reckon on a clock the test moves.
            let clock = Mutex<Int64>(Timestamp.millis())
            let now: @Sendable () -> Int64 = { clock.withLock { $0 } }
            let dead = SharedPresence(database: database, instanceID: "chat1-dead", lifetime: .seconds(3), now: now)
            let survivor = SharedPresence(database: database, instanceID: "chat2-live", lifetime: .seconds(30), now: now)
            #expect(try await dead.arrived("gone") == true)
            #expect(try await dead.arrived("both") == true)
            #expect(try await survivor.arrived("both") == false)
            #expect(try await survivor.maintain(present: { ["both"] }) == PresenceChanges())
            clock.withLock { $0 += 3100 }
            #expect(try await survivor.online(among: ["gone", "both"]) == ["both"])
            #expect(try await survivor.maintain(present: { ["both"] }) == PresenceChanges(online: [], offline: ["gone"]))
            // Swept already: nobody announces it twice.
            #expect(try await survivor.maintain(present: { ["both"] }) == PresenceChanges())
        }
    }

    @Test("entries swept while an instance could not renew them come back with its next heartbeat", arguments: DatabaseKind.allCases)
    func sweptEntriesReturn(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database async throws in
            let instance = SharedPresence(database: database, instanceID: "chat1-x", lifetime: .seconds(30))
            #expect(try await instance.arrived("u1") == true)
            try await database.transaction { sql in try await sql.raw("DELETE FROM presence").run() }
            #expect(try await instance.maintain(present: { ["u1"] }) == PresenceChanges(online: ["u1"], offline: []))
            #expect(try await instance.online(among: ["u1"]) == ["u1"])
        }
    }

    @Test(
        "an entry of a user no longer on the instance is removed by its next heartbeat, and the departure announced",
        arguments: DatabaseKind.allCases
    )
    func staleEntriesLeave(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database async throws in
            let instance = SharedPresence(database: database, instanceID: "chat1-y", lifetime: .seconds(30))
            let other = SharedPresence(database: database, instanceID: "chat2-y", lifetime: .seconds(30))
            #expect(try await instance.arrived("gone") == true)
            #expect(try await instance.arrived("elsewhere") == true)
            #expect(try await other.arrived("elsewhere") == false)
            // Neither is on this instance any more; only "gone" is offline everywhere.
            #expect(try await instance.maintain(present: { [] }) == PresenceChanges(online: [], offline: ["gone"]))
            #expect(try await other.online(among: ["gone", "elsewhere"]) == ["elsewhere"])
            #expect(try await instance.maintain(present: { [] }) == PresenceChanges())
        }
    }
}
