import ParleyCore
public import SQLKit

/// Fixed-window counters kept in the database, so a limit holds across every process that shares it.
public enum RateLimiter {
    static let pruneEvery = 500
    static let longestWindowMillis: Int64 = 86_400_000

    /// Removes the counters of windows that started before `cutoff`.
    public static func prune(before cutoff: Int64, in sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM rate_limits WHERE window_start < \(bind: cutoff)").run()
    }

    /// The seconds to wait when `bucket` has had `limit` hits or more in its current window; nil when another hit is allowed.
    /// Reads without counting, for limits that count only some outcomes (a wrong code, not a right one).
    public static func wait(bucket: String, limit: Int, windowSeconds: Int, now: Int64, in sql: any SQLDatabase) async throws -> Int? {
        let window = Int64(windowSeconds) * 1000
        guard let row = try await sql.raw("SELECT window_start, hits FROM rate_limits WHERE bucket = \(bind: bucket)").first() else { return nil }
        let start = try row.decode(column: "window_start", as: Int64.self)
        guard start > now - window, try row.decode(column: "hits", as: Int.self) >= limit else { return nil }
        return Int((start + window - now + 999) / 1000)
    }

    /// Counts one hit on `bucket` inside the caller's transaction; returns the seconds to wait when the limit is exceeded.
    public static func hit(bucket: String, limit: Int, windowSeconds: Int, now: Int64, in sql: any SQLDatabase) async throws -> Int? {
        let window = Int64(windowSeconds) * 1000
        let expired = now - window
        let row = try await sql.raw(
            """
            INSERT INTO rate_limits (bucket, window_start, hits) VALUES (\(bind: bucket), \(bind: now), 1)
            ON CONFLICT (bucket) DO UPDATE SET
                hits = CASE WHEN rate_limits.window_start <= \(bind: expired) THEN 1 ELSE rate_limits.hits + 1 END,
                window_start = CASE WHEN rate_limits.window_start <= \(bind: expired) THEN \(bind: now) ELSE rate_limits.window_start END
            RETURNING window_start, hits
            """
        ).first()
        // Now and then, forget clients not seen for a day (no window is longer), so the table does not grow with every address.
        if Int.random(in: 0..<Self.pruneEvery) == 0 {
            try await Self.prune(before: now - Self.longestWindowMillis, in: sql)
        }
        guard let row else { return nil }
        let hits = try row.decode(column: "hits", as: Int.self)
        guard hits > limit else { return nil }
        let start = try row.decode(column: "window_start", as: Int64.self)
        return Int((start + window - now + 999) / 1000)
    }
}
