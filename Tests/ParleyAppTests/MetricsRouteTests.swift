import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import ParleyCore
import ParleyTestSupport
import Testing

/// `GET /metrics` carries Parley's own metrics under the names docs/deploy.md ("Monitoring"), the Grafana dashboard and
/// the alert rules use, and they count what happened. The registry is the process's, shared by every test running beside
/// this one, so counts are compared as "at least one more than before".
@Suite struct MetricsRouteTests {
    @Test("a sign-in, a refused code and a message show in /metrics by name, and no id does", arguments: DatabaseKind.allCases)
    func domainMetricsCountWhatHappened(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            let before = try await Self.samples(app)
            let people = try await app.signIn(count: 2)
            let chatID = try await app.directChat(people[0], with: people[1])
            try await app.send(people[0], to: chatID, "counted")
            let refused = try await app.request(.post, "/api/v1/verify", json: #"{"email":"\#(people[0].email)","otp":"12345"}"#)
            #expect(refused.status == .badRequest)

            // The fan-out and the mail worker count on their own tasks, a moment after the answers.
            let mailed = #"parley_mail_deliveries_total{outcome="sent"}"#
            let fannedOut = "parley_fanout_latency_seconds_count"
            var after = try await Self.samples(app)
            let deadline = ContinuousClock.now + .seconds(10)
            while after[fannedOut, default: 0] < before[fannedOut, default: 0] + 1 || after[mailed, default: 0] < before[mailed, default: 0] + 2,
                ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(50))
                after = try await Self.samples(app)
            }

            func grew(_ series: String, by least: Double, sourceLocation: SourceLocation = #_sourceLocation) {
                let now = after[series]
                #expect(now != nil, "\(series) is not in /metrics", sourceLocation: sourceLocation)
                let was = before[series, default: 0]
                #expect((now ?? 0) >= was + least, "\(series): \(was) → \(now ?? 0)", sourceLocation: sourceLocation)
            }
            grew("parley_messages_stored_total", by: 1)
            grew("parley_login_codes_sent_total", by: 2)
            grew(#"parley_login_verifications_failed_total{reason="malformed"}"#, by: 1)
            grew(#"parley_http_requests_total{route="/api/v1/verify",method="POST",status="400"}"#, by: 1)
            grew(#"parley_mail_deliveries_total{outcome="sent"}"#, by: 2)
            grew("parley_message_writer_batch_size_count", by: 1)
            grew("parley_fanout_latency_seconds_count", by: 1)
            let pool = kind == .sqlite ? "sqlite_writer" : "postgres"
            grew(#"parley_db_connection_wait_seconds_count{pool="\#(pool)"}"#, by: 1)
            // Registered at zero before anything happens, so that dashboards and alerts find them from the start.
            for series in [
                "parley_message_changes_stored_total", "parley_send_ack_seconds_count", "parley_message_writer_queue_depth",
                "parley_message_writer_stalls_total",
                "parley_connected_sockets", "parley_connected_users", "parley_mail_outbox_waiting", "parley_mail_outbox_oldest_age_seconds",
                #"parley_login_verifications_failed_total{reason="wrong_code"}"#, #"parley_mail_deliveries_total{outcome="failed"}"#,
            ] {
                #expect(after[series] != nil, "\(series) is not in /metrics")
            }
            let available = try #require(after["parley_data_filesystem_avail_bytes"])
            let size = try #require(after["parley_data_filesystem_size_bytes"])
            #expect(available > 0 && size >= available)

            let text = try await Self.text(app)
            for id in people.map(\.userID) + [chatID] {
                #expect(!text.contains(id), "an id is in /metrics")
            }
        }
    }

    @Test("the send histogram's buckets are the chat ones: sub-millisecond to seconds")
    func chatLatencyBuckets() async throws {
        try await TestApp.run(.sqlite) { app in
            let samples = try await Self.samples(app)
            for bound in ["0.0005", "0.001", "0.0025", "0.005", "0.05", "0.25", "1.0", "5.0", "+Inf"] {
                #expect(samples[#"parley_send_ack_seconds_bucket{le="\#(bound)"}"#] != nil, "no bucket le=\(bound)")
            }
        }
    }

    /// The text `/metrics` answers.
    static func text(_ app: TestApp) async throws -> String {
        let response = try await app.request(.get, "/metrics")
        try #require(response.status == .ok)
        #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
        return String(buffer: response.body)
    }

    /// Every sample of `/metrics`, by its series (name and labels as written).
    static func samples(_ app: TestApp) async throws -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in try await Self.text(app).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
