import Foundation
import ParleyCore
import Testing
import Tracing

/// Span export's parts that need no receiver: the recorder's bound, what a recording span keeps, the OTLP JSON it
/// becomes, and the `OTEL_*` settings. (Against a receiver decoding with opentelemetry-proto: tests/e2e/test_traces_export.py.)
@Suite struct TraceExportTests {
    static let example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    static func span(_ name: String) -> FinishedSpan {
        FinishedSpan(traceID: String(repeating: "a", count: 32), spanID: "00000000000000b1", name: name, kind: .internal, startNanoseconds: 1)
    }

    @Test func theRecorderNeverHoldsMoreThanItsCapacityAndHandsOutBatchesInOrder() {
        let recorder = SpanRecorder(capacity: 5, batchSize: 2)
        for index in 0..<12 { recorder.add(Self.span("s\(index)")) }
        #expect(recorder.waiting == 5, "the rest are dropped")
        #expect(recorder.take().map(\.name) == ["s0", "s1"])
        #expect(recorder.take().map(\.name) == ["s2", "s3"])
        #expect(recorder.take().map(\.name) == ["s4"])
        #expect(recorder.take().isEmpty)
        recorder.add(Self.span("later"))
        #expect(recorder.take().map(\.name) == ["later"], "room again once taken")
    }

    @Test func aRecordingSpanKeepsItsParentKindTimesAttributesAndStatusAndIsHandedOverOnce() throws {
        let recorder = SpanRecorder(capacity: 10, batchSize: 10)
        let tracer = CorrelationTracer(recorder: recorder)
        var context = ServiceContext.topLevel
        context.traceParent = TraceParent(header: Self.example)
        let span = tracer.startSpan("HTTP GET route not found", context: context, ofKind: .server, at: DefaultTracerClock.now)
        #expect(span.isRecording)
        span.operationName = "/api/v1/chats/{id}"
        span.attributes["http.request.method"] = "GET"
        span.attributes["http.response.status_code"] = 503
        span.recordError(CancellationError())
        span.end()
        #expect(!span.isRecording)
        span.attributes["after.end"] = "ignored"
        span.end()
        let ended = recorder.take()
        try #require(ended.count == 1)
        let finished = ended[0]
        #expect(finished.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(finished.parentSpanID == "00f067aa0ba902b7")
        #expect(finished.spanID == span.context.traceParent?.spanID)
        #expect(finished.name == "/api/v1/chats/{id}")
        #expect(finished.kind == .server)
        #expect(finished.startNanoseconds > 1_700_000_000 * 1_000_000_000 && finished.endNanoseconds >= finished.startNanoseconds)
        #expect(finished.events.map(\.name) == ["exception"])
        #expect(finished.attributes.get("after.end") == nil)

        let json = try JSONSerialization.jsonObject(
            with: Data(OTLPJSON.exportRequest(ended, resource: [("service.name", "parley")], scopeVersion: "1"))
        )
        let resourceSpans = try #require((json as? [String: Any])?["resourceSpans"] as? [[String: Any]])
        let scopeSpans = try #require(resourceSpans.first?["scopeSpans"] as? [[String: Any]])
        let encoded = try #require((scopeSpans.first?["spans"] as? [[String: Any]])?.first)
        #expect(encoded["traceId"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(encoded["parentSpanId"] as? String == "00f067aa0ba902b7")
        #expect(encoded["kind"] as? Int == 2)
        #expect(encoded["startTimeUnixNano"] as? String == String(finished.startNanoseconds))
        #expect((encoded["status"] as? [String: Any])?["code"] as? Int == 2, "a server span answered 5xx is an error")
        let attributes = try #require(encoded["attributes"] as? [[String: Any]])
        let status = attributes.first { $0["key"] as? String == "http.response.status_code" }
        #expect((status?["value"] as? [String: Any])?["intValue"] as? String == "503")
    }

    @Test func anUnsampledTraceOrNoRecorderRecordsNothing() {
        let recorder = SpanRecorder(capacity: 10, batchSize: 10)
        var context = ServiceContext.topLevel
        context.traceParent = TraceParent(header: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
        let unsampled = CorrelationTracer(recorder: recorder).startSpan("x", context: context, ofKind: .server, at: DefaultTracerClock.now)
        #expect(!unsampled.isRecording)
        unsampled.end()
        let unrecorded = CorrelationTracer().startSpan("y", context: .topLevel, ofKind: .server, at: DefaultTracerClock.now)
        #expect(!unrecorded.isRecording)
        unrecorded.end()
        #expect(recorder.waiting == 0)
    }

    @Test func theStandardVariablesConfigureTheExport() throws {
        #expect(try TraceExportSettings.read([:]) == nil)
        let base = try #require(try TraceExportSettings.read(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"]))
        #expect(base.endpoint == "http://collector:4318/v1/traces")
        #expect(base.scheduleDelay == .seconds(5) && base.maxQueueSize == 2048 && base.maxBatchSize == 512 && base.timeout == .seconds(10))
        let full = try #require(
            try TraceExportSettings.read([
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector.example/custom/path",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
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
            (
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"]
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
