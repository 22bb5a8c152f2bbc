import Instrumentation
public import Logging
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
        // Its own warnings (a failed export, spans dropped from a full queue) in Parley's log format.
        otel.diagnosticLogger = .custom(logger)
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
