import ParleyCore
import Testing

@testable import ChatService

@Suite("Per-user token buckets")
struct UserRateLimitsTests {
    static func settings(_ rate: Rate) -> RateLimitSettings {
        var settings = RateLimitSettings()
        (settings.messages, settings.typing, settings.groups, settings.uploads) = (rate, rate, rate, rate)
        return settings
    }

    @Test func aBurstThenTheRateWithTheWaitToldInWholeSeconds() throws {
        let limits = UserRateLimits(Self.settings(Rate(burst: 2, perSecond: 0.25)))
        let start = ContinuousClock.now
        try limits.take(.message, userID: "a", now: start)
        try limits.take(.message, userID: "a", now: start)
        #expect(throws: ChatError.rateLimited("messages", retryAfter: 4)) { try limits.take(.message, userID: "a", now: start) }
        // Another user, and another action of the same user, have their own buckets.
        try limits.take(.message, userID: "b", now: start)
        try limits.take(.typing, userID: "a", now: start)
        // A second later: three quarters of a token short, so 3 s to wait; after four, one token.
        #expect(throws: ChatError.rateLimited("messages", retryAfter: 3)) { try limits.take(.message, userID: "a", now: start + .seconds(1)) }
        try limits.take(.message, userID: "a", now: start + .seconds(4))
    }

    @Test func bucketsOfUsersWhoStoppedAreForgotten() throws {
        // Bound: the buckets kept are those still refilling, whatever the number of users seen.
        let limits = UserRateLimits(Self.settings(Rate(burst: 5, perSecond: 10)))
        let start = ContinuousClock.now
        for user in 0..<10_000 { try limits.take(.message, userID: "u\(user)", now: start) }
        #expect(limits.count == 10_000, "every bucket is still refilling")
        // One second later those buckets are full again: the next prune (every 4,096 takes) forgets them, and only the
        // 4,096 new users' buckets, still refilling, are kept.
        for user in 0..<4096 { try limits.take(.message, userID: "late\(user)", now: start + .seconds(1)) }
        #expect(limits.count == 4096, "\(limits.count) buckets kept")
    }
}
