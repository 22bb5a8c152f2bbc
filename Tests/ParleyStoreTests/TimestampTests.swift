import Foundation
import ParleyCore
import Testing

/// Every stored time is shown this way: in messages' JSON, in log lines.
@Suite struct TimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (1_764_097_764_123, "2025-11-25T19:09:24.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ])
    func iso8601WithMilliseconds(millis: Int64, text: String) {
        #expect(Timestamp.iso8601(millis: millis) == text)
    }

    @Test func agreesWithFoundationOverTwoCenturies() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let millis = Int64.random(in: -2_208_988_800_000...4_102_444_800_000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(millis) / 1000)
            let parsed = try #require(formatter.date(from: Timestamp.iso8601(millis: millis)))
            #expect(abs(parsed.timeIntervalSince(date)) < 0.0005, "\(millis)")
        }
    }
}
