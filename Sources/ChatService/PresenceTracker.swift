import Logging
import SocketIOServer
import Synchronization

/// Counts this instance's sockets per user and announces comings and goings on the bus: a user is online from their first
/// socket, and offline only when the last one has been gone for the grace period (a reload is not going offline).
final class PresenceTracker: Sendable {
    /// Who is online across instances.
    let registry: any PresenceRegistry
    let bus: any ChatEventBus
    /// How long a user's last socket may be gone before contacts hear `userOffline`.
    let grace: Duration
    let clock: any Clock<Duration>
    /// Owns the grace timers.
    let tasks: BackgroundTasks
    let logger: Logger
    private let state = Mutex(State())

    struct State {
        var sockets: [String: Int] = [:]
        /// Users within their grace period, each with the timer that may announce them offline.
        var pendingOffline: [String: UInt64] = [:]
        var lastTimer: UInt64 = 0
    }

    init(registry: any PresenceRegistry, bus: any ChatEventBus, grace: Duration, clock: any Clock<Duration>, tasks: BackgroundTasks, logger: Logger) {
        self.registry = registry
        self.bus = bus
        self.grace = grace
        self.clock = clock
        self.tasks = tasks
        self.logger = logger
    }

    /// Counts a new socket of `userID`; true when the user was not here before (not even within a grace period).
    func socketConnected(_ userID: String) -> Bool {
        self.state.withLock { state in
            let count = state.sockets[userID, default: 0]
            state.sockets[userID] = count + 1
            // Back within the grace period: the timer finds itself outdated, and nobody heard of the departure.
            if state.pendingOffline.removeValue(forKey: userID) != nil { return false }
            return count == 0
        }
    }

    /// Records the arrival of a user whose first socket connected here, and announces it to `contacts` when they were
    /// offline everywhere.
    func announceArrival(of userID: String, contacts: [String]) async {
        do {
            if try await self.registry.arrived(userID) {
                self.bus.publish(.presence(userID: userID, online: true, contacts: contacts))
            }
        } catch {
            self.logger.warning("cannot record presence", metadata: ["error": "\(error)"])
        }
    }

    /// Counts a socket of `userID` gone; the last one starts the grace period.
    func socketDisconnected(_ userID: String) {
        let timer = self.state.withLock { state -> UInt64? in
            let count = state.sockets[userID, default: 1] - 1
            if count > 0 {
                state.sockets[userID] = count
                return nil
            }
            state.sockets[userID] = nil
            state.lastTimer += 1
            state.pendingOffline[userID] = state.lastTimer
            return state.lastTimer
        }
        guard let timer else { return }
        self.tasks.add { await self.endGrace(of: userID, timer: timer) }
    }

    /// Announces `userID` offline after the grace period, unless a socket of theirs came back meanwhile.
    func endGrace(of userID: String, timer: UInt64) async {
        do {
            try await self.clock.sleep(for: self.grace)
        } catch {
            return
        }
        let stillGone = self.state.withLock { state -> Bool in
            guard state.sockets[userID] == nil, state.pendingOffline[userID] == timer else { return false }
            state.pendingOffline[userID] = nil
            return true
        }
        guard stillGone else { return }
        do {
            if try await self.registry.departed(userID) { self.bus.publish(.presence(userID: userID, online: false)) }
        } catch {
            // The entry expires by itself and whoever sweeps it announces the departure.
            self.logger.warning("cannot record departure", metadata: ["error": "\(error)"])
        }
    }

    /// The users with a socket here, or within their grace period after the last one.
    @Sendable func presentUsers() -> Set<String> {
        self.state.withLock { Set($0.sockets.keys).union($0.pendingOffline.keys) }
    }

    /// Which of `userIDs` are online anywhere (none when the registry cannot tell).
    func online(among userIDs: [String]) async -> Set<String> {
        (try? await self.registry.online(among: userIDs)) ?? []
    }

    /// Renews this instance's presence entries and announces what changed elsewhere (instances that died, entries swept
    /// away), until cancelled; nothing to do where the registry needs no maintenance.
    func maintain() async {
        guard let interval = self.registry.maintenanceInterval else { return }
        while !Task.isCancelled {
            do {
                try await self.clock.sleep(for: interval)
            } catch {
                return
            }
            do {
                let changes = try await self.registry.maintain(present: self.presentUsers)
                for userID in changes.online { self.bus.publish(.presence(userID: userID, online: true)) }
                for userID in changes.offline { self.bus.publish(.presence(userID: userID, online: false)) }
            } catch {
                self.logger.warning("cannot renew presence", metadata: ["error": "\(error)"])
            }
        }
    }
}
