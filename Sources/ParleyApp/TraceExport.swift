import Instrumentation
public import Logging
import Metrics
import OTel
public import ParleyCore
public import ServiceLifecycle

/// The process's tracer: Parley's ``CorrelationTracer`` (ids, `traceparent`, log lines), or, when an OTLP export is
/// configured (`OTEL_EXPORTER_OTLP_ENDPOINT`, ``TraceExportSettings``), swift-otel's tracer with its batch span processor
/// and OTLP/HTTP exporter, which records and sends the spans. Either way one trace id follows the work and the log lines.
public enum TraceExport {
    /// Installs the tracer; call once, before anything makes an HTTP client (AsyncHTTPClient takes the process's tracer
    /// when a client is made). Returns the service that sends spans, to run first in the service group (so that it
    /// stops last and sends what the last requests left), or nil when nothing is exported.
    public static func bootstrap(role: ServiceRole, configuration: ParleyConfiguration, logger: Logger) throws -> (any Service)? {
        guard let settings = configuration.traceExport else {
            ParleyTracing.bootstrap()
            return nil
        }
        var otel = OTel.Configuration.default
        otel.serviceName = settings.serviceName ?? (role == .all ? "parley" : "parley-\(role.rawValue)")
        otel.resourceAttributes["service.version"] = ParleyVersion.current
        if let instance = configuration.instanceName { otel.resourceAttributes["service.instance.id"] = instance }
        otel.propagators = [.traceContext]
        // Its own warnings (a failed export, spans dropped from a full queue) in Parley's log format, and counted.
        otel.diagnosticLogger = .custom(Logger(label: logger.label) { _ in SpanLossCounter(forwardingTo: logger.handler) })
        otel.diagnosticLogLevel = .warning
        otel.logs.enabled = false
        otel.metrics.enabled = false
        otel.traces.exporter = .otlp
        otel.traces.otlpExporter.protocol = .httpProtobuf
        otel.traces.otlpExporter.timeout = settings.timeout
        otel.traces.otlpExporter.headers = settings.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        otel.traces.batchSpanProcessor.scheduleDelay = settings.scheduleDelay
        otel.traces.batchSpanProcessor.exportTimeout = settings.timeout
        otel.traces.batchSpanProcessor.maxQueueSize = settings.maxQueueSize
        otel.traces.batchSpanProcessor.maxExportBatchSize = settings.maxBatchSize
        // swift-otel reads the same OTEL_* variables over these; the endpoint is the one Parley resolved.
        otel.traces.otlpExporter.endpoint = settings.endpoint
        let backend = try OTel.makeTracingBackend(configuration: otel)
        InstrumentationSystem.bootstrap(backend.factory)
        logger.notice("exporting spans over OTLP/HTTP", metadata: ["endpoint": .string(settings.endpoint)])
        return backend.service
    }
}

/// Counts the spans swift-otel loses, from its diagnostic log lines (the only report it gives of them), into
/// `parley_trace_spans_dropped_total{reason}`: `queue_full` (spans that found the batch queue full) and `export_failed`
/// (the spans of a batch the receiver did not take: refused, down, or over the timeout). Every line goes on to Parley's log.
struct SpanLossCounter: LogHandler {
    var next: any LogHandler
    let queueFull: Counter
    let exportFailed: Counter

    init(forwardingTo next: any LogHandler) {
        self.next = next
        self.queueFull = Counter(label: "parley_trace_spans_dropped_total", dimensions: [("reason", "queue_full")], factory: ParleyMetrics.factory)
        self.exportFailed = Counter(
            label: "parley_trace_spans_dropped_total",
            dimensions: [("reason", "export_failed")],
            factory: ParleyMetrics.factory
        )
    }

    var metadata: Logger.Metadata {
        get { self.next.metadata }
        set { self.next.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { self.next.logLevel }
        set { self.next.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.next[metadataKey: key] }
        set { self.next[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        let metadata = event.metadata ?? [:]
        let merged = self.next.metadata.merging(metadata) { _, new in new }
        switch event.message.description {
        case "Spans were dropped this iteration because queue was full":
            if let count = merged["dropped_count"].flatMap({ Int64("\($0)") }) { self.queueFull.increment(by: count) }
        case "Failed to export batch.":
            if let count = merged["batch_size"].flatMap({ Int64("\($0)") }) { self.exportFailed.increment(by: count) }
        default:
            break
        }
        self.next.log(event: event)
    }
}
