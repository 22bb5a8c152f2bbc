public import Foundation

/// Timestamps are stored as integer milliseconds since the Unix epoch and shown as ISO-8601 UTC with milliseconds.
public enum Timestamp {
    /// Milliseconds since the epoch for `date`.
    public static func millis(_ date: Date = Date()) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// `2026-11-25T19:09:24.123Z` for a millisecond timestamp.
    public static func iso8601(millis: Int64) -> String {
        let seconds = Int(millis.floorDivided(by: 1000))
        let milliseconds = Int(millis - Int64(seconds) * 1000)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900,
            Int(parts.tm_mon) + 1,
            Int(parts.tm_mday),
            Int(parts.tm_hour),
            Int(parts.tm_min),
            Int(parts.tm_sec),
            milliseconds
        )
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
