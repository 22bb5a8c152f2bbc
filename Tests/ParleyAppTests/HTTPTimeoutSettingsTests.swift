import ParleyCore
import Testing

/// The listener's time limits are settings with sane bounds (the limits themselves are attacked in
/// tests/e2e/test_hostile.py, against the binary).
@Suite("HTTP time limits: defaults, values and bad values")
struct HTTPTimeoutSettingsTests {
    @Test func settings() throws {
        let defaults = try ParleyConfiguration(environment: [:])
        #expect(defaults.httpHeaderTimeoutSeconds == 20 && defaults.httpRequestTimeoutSeconds == 300 && defaults.httpIdleTimeoutSeconds == 60)
        let set = try ParleyConfiguration(environment: [
            "PARLEY_HTTP_HEADER_TIMEOUT_SECONDS": "3", "PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS": "30", "PARLEY_HTTP_IDLE_TIMEOUT_SECONDS": "9",
        ])
        #expect(set.httpHeaderTimeoutSeconds == 3 && set.httpRequestTimeoutSeconds == 30 && set.httpIdleTimeoutSeconds == 9)
        let bad: [(String, String)] = [
            ("PARLEY_HTTP_HEADER_TIMEOUT_SECONDS", "0"), ("PARLEY_HTTP_HEADER_TIMEOUT_SECONDS", "601"),
            ("PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS", "1"), ("PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS", "soon"),
            ("PARLEY_HTTP_IDLE_TIMEOUT_SECONDS", "4"),
        ]
        for (variable, value) in bad {
            #expect(
                "\(variable)=\(value)",
                performing: { try ParleyConfiguration(environment: [variable: value]) },
                throws: { error in
                    (error as? ConfigurationError)?.variable == variable
                }
            )
        }
    }
}
