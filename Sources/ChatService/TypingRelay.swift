import ParleyCore
import SocketIOServer
import Synchronization

/// Relays `typing` / `stopTyping` to a chat's other members, and ends a typing that is not renewed within its lifetime.
final class TypingRelay: Sendable {
    let membership: MembershipCache
    let bus: any ChatEventBus
    /// How long `typing` lasts without a renewal.
    let lifetime: Duration
    let clock: any Clock<Duration>
    /// Owns the expiry timers.
    let tasks: BackgroundTasks
    /// The live typings, keyed by chat and user, each with the timer that may end it.
    private let timers = Mutex<(live: [String: UInt64], last: UInt64)>(([:], 0))

    init(membership: MembershipCache, bus: any ChatEventBus, lifetime: Duration, clock: any Clock<Duration>, tasks: BackgroundTasks) {
        self.membership = membership
        self.bus = bus
        self.lifetime = lifetime
        self.clock = clock
        self.tasks = tasks
    }

    /// `userID` started (or renewed) or stopped typing in `chatID`; ignored for chats they are not in.
    func typing(chatID: String, userID: String, isTyping: Bool) async throws {
        // Typing into a chat one is not in, or a direct chat with a block either way, is ignored before any timer is armed.
        guard Identifier.isValid(chatID), try await self.membership.members(of: chatID).contains(userID), !self.membership.isBlocked(chatID) else {
            return
        }
        let key = chatID + "|" + userID
        let (wasTyping, timer) = self.timers.withLock { timers -> (Bool, UInt64?) in
            let previous = timers.live.removeValue(forKey: key)
            guard isTyping else { return (previous != nil, nil) }
            timers.last += 1
            timers.live[key] = timers.last
            return (previous != nil, timers.last)
        }
        if let timer {
            self.tasks.add { await self.expire(chatID: chatID, userID: userID, key: key, timer: timer) }
        }
        // A renewal within the lifetime is not news for the others, nor is stopping what had not started.
        guard isTyping != wasTyping else { return }
        self.bus.publish(.typing(chatID: chatID, userID: userID, isTyping: isTyping))
    }

    /// Ends the typing after its lifetime, unless it was renewed or stopped meanwhile.
    func expire(chatID: String, userID: String, key: String, timer: UInt64) async {
        do {
            try await self.clock.sleep(for: self.lifetime)
        } catch {
            return
        }
        let current = self.timers.withLock { timers -> Bool in
            guard timers.live[key] == timer else { return false }
            timers.live[key] = nil
            return true
        }
        if current { self.bus.publish(.typing(chatID: chatID, userID: userID, isTyping: false)) }
    }
}
