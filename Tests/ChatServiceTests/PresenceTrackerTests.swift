import Logging
import SocketIOServer
import Testing

@testable import ChatService

@Suite("Presence of this instance's sockets, with a grace period on a test clock")
struct PresenceTrackerTests {
    func tracker(clock: TestClock, bus: RecordingBus, tasks: BackgroundTasks) -> PresenceTracker {
        PresenceTracker(registry: LocalPresence(), bus: bus, grace: .seconds(2), clock: clock, tasks: tasks, logger: Logger(label: "test"))
    }

    @Test("a user is online from the first socket, and offline only when the last one has been gone for the grace period")
    func offlineAfterGrace() async throws {
        let (clock, bus, tasks) = (TestClock(), RecordingBus(), BackgroundTasks())
        let presence = self.tracker(clock: clock, bus: bus, tasks: tasks)
        try await whileRunning(tasks) {
            #expect(presence.socketConnected("u1"))
            await presence.announceArrival(of: "u1", contacts: ["u2"])
            #expect(!presence.socketConnected("u1"))
            presence.socketDisconnected("u1")
            #expect(clock.sleeperCount == 0)
            presence.socketDisconnected("u1")
            try await clock.sleepers(1)
            clock.advance(by: .milliseconds(1999))
            #expect(clock.sleeperCount == 1)
            #expect(presence.presentUsers() == ["u1"])
            clock.advance(by: .milliseconds(1))
        }
        #expect(bus.events == [.presence(userID: "u1", online: true, contacts: ["u2"]), .presence(userID: "u1", online: false)])
        #expect(presence.presentUsers().isEmpty)
    }

    @Test("a socket back within the grace period is no arrival, and the departure is never announced")
    func backWithinGrace() async throws {
        let (clock, bus, tasks) = (TestClock(), RecordingBus(), BackgroundTasks())
        let presence = self.tracker(clock: clock, bus: bus, tasks: tasks)
        try await whileRunning(tasks) {
            #expect(presence.socketConnected("u1"))
            await presence.announceArrival(of: "u1", contacts: [])
            presence.socketDisconnected("u1")
            try await clock.sleepers(1)
            clock.advance(by: .seconds(1))
            #expect(!presence.socketConnected("u1"))
            clock.advance(by: .seconds(5))
        }
        #expect(bus.events == [.presence(userID: "u1", online: true, contacts: [])])
        #expect(presence.presentUsers() == ["u1"])
    }

    @Test("the timer of an earlier departure does not end a later grace period early")
    func earlierTimerIsOutdated() async throws {
        let (clock, bus, tasks) = (TestClock(), RecordingBus(), BackgroundTasks())
        let presence = self.tracker(clock: clock, bus: bus, tasks: tasks)
        try await whileRunning(tasks) {
            _ = presence.socketConnected("u1")
            await presence.announceArrival(of: "u1", contacts: [])
            presence.socketDisconnected("u1")
            try await clock.sleepers(1)
            clock.advance(by: .seconds(1))
            _ = presence.socketConnected("u1")
            presence.socketDisconnected("u1")
            try await clock.sleepers(2)
            // The first timer is due now, the second one only in a second.
            clock.advance(by: .seconds(1))
            #expect(clock.sleeperCount == 1)
            #expect(presence.presentUsers() == ["u1"])
            clock.advance(by: .seconds(1))
        }
        #expect(bus.events == [.presence(userID: "u1", online: true, contacts: []), .presence(userID: "u1", online: false)])
    }

    @Test("shutting down cancels the grace timers: nothing outlives the service")
    func shutdownCancelsTimers() async throws {
        let (clock, bus, tasks) = (TestClock(), RecordingBus(), BackgroundTasks())
        let presence = self.tracker(clock: clock, bus: bus, tasks: tasks)
        let running = Task { await tasks.run() }
        _ = presence.socketConnected("u1")
        presence.socketDisconnected("u1")
        try await clock.sleepers(1)
        running.cancel()
        await running.value
        #expect(clock.sleeperCount == 0)
        #expect(bus.events.isEmpty)
    }
}
