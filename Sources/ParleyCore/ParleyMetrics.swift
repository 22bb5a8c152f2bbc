public import Metrics
public import Prometheus

/// The process's metrics backend: one Prometheus registry, which `GET /metrics` serves.
///
/// Parley's own metrics are made with ``factory`` explicitly, so they are registered whenever they are made, before or
/// after the swift-metrics global backend is bootstrapped (tests make services in any order). Libraries that record
/// through the global backend (Hummingbird's request metrics, the Socket.IO server's counters) get the same factory
/// from ``bootstrap()``, which the process calls before it builds anything.
///
/// Names follow Prometheus's conventions: `parley_` first, the unit last (`_seconds`, `_bytes`, `_total` on counters),
/// labels with a handful of values at most, never a user or chat id. docs/deploy.md ("Monitoring") lists them all.
public enum ParleyMetrics {
    /// The registry every metric of the process is in.
    public static let registry = PrometheusCollectorRegistry()

    /// Makes metrics in ``registry``, with histogram buckets that suit what each one measures.
    public static let factory: PrometheusMetricsFactory = {
        var factory = PrometheusMetricsFactory(registry: registry)
        // HTTP requests (Hummingbird's, renamed `parley_http_request_duration_seconds` below): a millisecond to ten seconds.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        // A chat message is expected back within tens of milliseconds; a second is already bad.
        let chat: [Duration] = [
            .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
            .seconds(5),
        ]
        // A connection is usually there at once: the interesting waits are sub-millisecond to a few hundred.
        let lease: [Duration] = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .seconds(1),
        ]
        factory.durationHistogramBuckets = [
            Names.sendAck: chat,
            Names.fanoutLatency: chat,
            Names.busLag: chat + [.seconds(10), .seconds(30)],
            Names.connectionWait: lease,
        ]
        // The message writer's batches hold 1 to 256 messages.
        factory.valueHistogramBuckets = [Names.writerBatchSize: [1, 2, 4, 8, 16, 32, 64, 128, 256]]
        factory.nameAndLabelSanitizer = { name, labels in
            guard let renamed = httpNames[name] else { return (name, labels) }
            return (renamed, labels.map { (httpLabels[$0.0] ?? $0.0, $0.1) })
        }
        return factory
    }()

    /// Hummingbird's request metrics (OpenTelemetry's names, with dots), renamed to Prometheus's conventions: units and
    /// `_total` in the names, short labels. Each is renamed once, when the middleware first sees its route and status.
    static let httpNames = [
        "hb.requests": "parley_http_requests_total",
        "hb.request.errors": "parley_http_request_errors_total",
        "http.server.request.duration": "parley_http_request_duration_seconds",
        "http.server.active_requests": "parley_http_active_requests",
    ]
    static let httpLabels = ["http.route": "route", "http.request.method": "method", "http.response.status_code": "status", "error.type": "status"]

    private static let bootstrapped: Void = MetricsSystem.bootstrap(factory)

    /// Installs ``factory`` as the swift-metrics global backend, once per process however often it is called.
    public static func bootstrap() {
        _ = bootstrapped
    }

    /// The names of the metrics that need buckets of their own; the rest are named where they are made.
    public enum Names {
        public static let sendAck = "parley_send_ack_seconds"
        public static let fanoutLatency = "parley_fanout_latency_seconds"
        public static let busLag = "parley_bus_lag_seconds"
        public static let connectionWait = "parley_db_connection_wait_seconds"
        public static let writerBatchSize = "parley_message_writer_batch_size"
    }
}
