import ParleyCore
import Testing

/// The `OTEL_*` settings that turn span export on (swift-otel's OTLP/HTTP exporter), and the values that stop the
/// process at start. (Against a receiver decoding with opentelemetry-proto: tests/e2e/test_traces_export.py.)
@Suite struct TraceExportTests {
    @Test func theStandardVariablesConfigureTheExport() throws {
        #expect(try TraceExportSettings.read([:]) == nil)
        let base = try #require(try TraceExportSettings.read(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"]))
        #expect(base.endpoint == "http://collector:4318/v1/traces")
        #expect(base.scheduleDelay == .seconds(5) && base.maxQueueSize == 2048 && base.maxBatchSize == 512 && base.timeout == .seconds(10))
        let full = try #require(
            try TraceExportSettings.read([
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector.example/custom/path",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_HEADERS": "api-key=se%20cret,x-team=chat",
                "OTEL_SERVICE_NAME": "parley-eu",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            ])
        )
        #expect(full.endpoint == "https://collector.example/custom/path", "the signal's own endpoint is used as it is")
        #expect(full.headers == ["api-key": "se cret", "x-team": "chat"])
        #expect(full.serviceName == "parley-eu" && full.timeout == .milliseconds(2500) && full.scheduleDelay == .milliseconds(100))
        #expect(try TraceExportSettings.read(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"]) == nil)
        #expect(try TraceExportSettings.read(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"]) == nil)

        let refused: [(String, [String: String])] = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ["OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"]),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector/v1/traces"]),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"]),
            // http/json: swift-otel 1.6 writes ids in base64 where OTLP's JSON (and a collector) wants hex.
            (
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"]
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"]),
            ("OTEL_EXPORTER_OTLP_HEADERS", ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "a=b%0D%0AInjected: 1"]),
            ("OTEL_BSP_MAX_QUEUE_SIZE", ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_BSP_MAX_QUEUE_SIZE": "0"]),
            (
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "11"]
            ),
            ("OTEL_TRACES_EXPORTER", ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "zipkin"]),
        ]
        for (variable, environment) in refused {
            #expect(throws: ConfigurationError.self, "\(environment)") { try TraceExportSettings.read(environment) }
            do {
                _ = try TraceExportSettings.read(environment)
            } catch let error as ConfigurationError {
                #expect(error.variable == variable)
            }
        }
    }
}
