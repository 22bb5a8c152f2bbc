import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Caps what anyone can make the server hold before authenticating: sessions without an admitted socket yet, per client
/// address and in all, and the rate of new sessions per address (a token bucket). IPv6 addresses count by /64, the block
/// one subscriber usually holds.
final class SessionLimits: Sendable {
    /// Why a new session is refused.
    enum Refusal: Error, Equatable {
        /// This address holds too many unauthenticated sessions, or opens them too fast: 429.
        case address
        /// The server holds too many unauthenticated sessions: 503.
        case server
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct State {
        var pending = 0
        var pendingByAddress: [String: Int] = [:]
        var buckets: [String: Bucket] = [:]
        var opened = 0
    }

    private let limits: SocketIOConfiguration.Limits
    private let state = Mutex(State())

    init(_ limits: SocketIOConfiguration.Limits) {
        self.limits = limits
    }

    /// Counts a new unauthenticated session from `address` (a key from ``key(of:)``), or refuses it.
    func open(from address: String, now: ContinuousClock.Instant = .now) -> Refusal? {
        self.state.withLock { state -> Refusal? in
            if let refusal = self.capRefusal(state, address) { return refusal }
            var bucket = state.buckets[address] ?? Bucket(tokens: Double(self.limits.handshakeBurst), updated: now)
            bucket = Bucket(tokens: self.tokens(of: bucket, at: now), updated: now)
            guard bucket.tokens >= 1 else {
                state.buckets[address] = bucket
                return .address
            }
            bucket.tokens -= 1
            state.buckets[address] = bucket
            state.pending += 1
            state.pendingByAddress[address, default: 0] += 1
            state.opened += 1
            // Now and then, forget the buckets that have filled up again: an address that stopped costs nothing.
            if state.opened % 1024 == 0 {
                let full = Double(self.limits.handshakeBurst)
                state.buckets = state.buckets.filter { _, bucket in self.tokens(of: bucket, at: now) < full }
            }
            return nil
        }
    }

    /// A session counted by ``open(from:now:)`` admitted its first socket, or ended without one.
    func settled(from address: String) {
        self.state.withLock { state in
            state.pending -= 1
            let left = state.pendingByAddress[address, default: 1] - 1
            state.pendingByAddress[address] = left > 0 ? left : nil
        }
    }

    /// Whether ``open(from:now:)`` would refuse a session from `address` now, without counting one.
    func check(_ address: String, now: ContinuousClock.Instant = .now) -> Refusal? {
        self.state.withLock { state -> Refusal? in
            if let refusal = self.capRefusal(state, address) { return refusal }
            guard let bucket = state.buckets[address] else { return nil }
            return self.tokens(of: bucket, at: now) >= 1 ? nil : .address
        }
    }

    /// The refusal the caps on unauthenticated sessions give `address` now, if any.
    private func capRefusal(_ state: State, _ address: String) -> Refusal? {
        guard state.pending < self.limits.maxPendingSessions else { return .server }
        guard state.pendingByAddress[address, default: 0] < self.limits.maxPendingSessionsPerAddress else { return .address }
        return nil
    }

    /// The tokens `bucket` holds at `now`: refilled at the rate since it was last updated, at most the burst.
    private func tokens(of bucket: Bucket, at now: ContinuousClock.Instant) -> Double {
        let idle = bucket.updated.duration(to: now)
        let refill = Double(idle.components.seconds) + Double(idle.components.attoseconds) / 1e18
        return min(Double(self.limits.handshakeBurst), bucket.tokens + refill * self.limits.handshakesPerSecond)
    }

    /// Unauthenticated sessions held now.
    var pendingCount: Int { self.state.withLock { $0.pending } }

    /// The key `address` counts under: IPv4 as it is, IPv6 by its /64, no address as one key.
    static func key(of address: String?) -> String {
        guard let address else { return "-" }
        var v6 = in6_addr()
        guard address.contains(":"), inet_pton(AF_INET6, address, &v6) == 1 else { return address }
        let bytes = withUnsafeBytes(of: &v6) { Array($0.prefix(8)) }
        return bytes.map { String($0, radix: 16) }.joined(separator: ".") + "/64"
    }
}

/// One session's place among the unauthenticated ones: given back once, when its first socket is admitted or it ends.
final class PendingSession: Sendable {
    private let limits: SessionLimits
    private let key: String
    private let done = Atomic<Bool>(false)

    init(limits: SessionLimits, key: String) {
        self.limits = limits
        self.key = key
    }

    /// Gives the place back; later calls do nothing.
    func settle() {
        guard !self.done.exchange(true, ordering: .relaxed) else { return }
        self.limits.settled(from: self.key)
    }
}
