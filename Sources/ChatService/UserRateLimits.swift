public import ParleyCore
import Synchronization

/// What one signed-in user may make this chat instance do, as token buckets: a burst at once, then a steady rate. Each
/// instance counts on its own (a user whose sockets reach N instances gets up to N times the rate). Memory: one bucket
/// per user and action while it refills; a full bucket is forgotten, so what is kept is bounded by the users active
/// within a refill time.
public final class UserRateLimits: Sendable {
    /// What is limited.
    enum Action: String, CaseIterable {
        case message, typing, group, upload

        /// How a refusal names it.
        var noun: String {
            switch self {
            case .message: "messages"
            case .typing: "typing events"
            case .group: "new groups"
            case .upload: "uploads"
            }
        }
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let rates: [Action: Rate]
    private let buckets = Mutex<(byKey: [String: Bucket], taken: Int)>(([:], 0))

    public init(_ settings: RateLimitSettings) {
        self.rates = [.message: settings.messages, .typing: settings.typing, .group: settings.groups, .upload: settings.uploads]
    }

    /// No limits (tests of other things).
    public static var unlimited: UserRateLimits {
        let rate = Rate(burst: 1_000_000_000, perSecond: 1_000_000_000)
        var settings = RateLimitSettings()
        (settings.messages, settings.typing, settings.groups, settings.uploads) = (rate, rate, rate, rate)
        return UserRateLimits(settings)
    }

    /// Takes one `action` from `userID`'s bucket, or throws ``ChatError/rateLimited(_:retryAfter:)`` with the whole
    /// seconds until one is there again.
    func take(_ action: Action, userID: String, now: ContinuousClock.Instant = .now) throws {
        guard let rate = self.rates[action] else { return }
        let key = action.rawValue + "|" + userID
        let wait = self.buckets.withLock { buckets -> Double? in
            let bucket = buckets.byKey[key].map { Self.refilled($0, rate, now) } ?? Bucket(tokens: Double(rate.burst), updated: now)
            guard bucket.tokens >= 1 else {
                buckets.byKey[key] = bucket
                return (1 - bucket.tokens) / rate.perSecond
            }
            buckets.byKey[key] = Bucket(tokens: bucket.tokens - 1, updated: now)
            buckets.taken += 1
            // Now and then, forget the buckets that have filled up again: a user who stopped costs nothing.
            if buckets.taken % 4096 == 0 {
                buckets.byKey = buckets.byKey.filter { key, bucket in
                    guard let action = Action(rawValue: String(key.prefix { $0 != "|" })), let rate = self.rates[action] else { return false }
                    return Self.refilled(bucket, rate, now).tokens < Double(rate.burst)
                }
            }
            return nil
        }
        if let wait { throw ChatError.rateLimited(action.noun, retryAfter: Int(wait.rounded(.up))) }
    }

    /// Buckets held now (for tests of the memory bound).
    var count: Int { self.buckets.withLock { $0.byKey.count } }

    /// `bucket` at `now`: refilled at the rate since it was last updated, at most the burst.
    private static func refilled(_ bucket: Bucket, _ rate: Rate, _ now: ContinuousClock.Instant) -> Bucket {
        let idle = bucket.updated.duration(to: now)
        let seconds = Double(idle.components.seconds) + Double(idle.components.attoseconds) / 1e18
        return Bucket(tokens: min(Double(rate.burst), bucket.tokens + max(0, seconds) * rate.perSecond), updated: now)
    }
}
