import Foundation
import Metrics
import Synchronization
public import Tracing

/// A span as it ended: what OTLP carries of it.
public struct FinishedSpan: Sendable {
    public var traceID: String
    public var spanID: String
    /// The span this one is a child of (in this process or the caller's), or nil for the first span of a trace.
    public var parentSpanID: String?
    public var name: String
    public var kind: SpanKind
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64 = 0
    public var attributes: SpanAttributes = [:]
    public var events: [SpanEvent] = []
    public var status: SpanStatus?

    /// Events kept per span at most (OpenTelemetry's default limit); more are left out.
    static let maxEvents = 128

    public init(traceID: String, spanID: String, parentSpanID: String? = nil, name: String, kind: SpanKind, startNanoseconds: UInt64) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.startNanoseconds = startNanoseconds
    }
}

/// The state of a recording span, shared by the copies of its `CorrelationSpan`; handed to the recorder once, at its end.
final class SpanRecord: Sendable {
    private struct State {
        var span: FinishedSpan
        var open = true
    }

    private let state: Mutex<State>
    private let recorder: SpanRecorder

    init(_ span: FinishedSpan, recorder: SpanRecorder) {
        self.state = Mutex(State(span: span))
        self.recorder = recorder
    }

    var isOpen: Bool { self.state.withLock { $0.open } }

    func read<T: Sendable>(_ field: (FinishedSpan) -> T) -> T {
        self.state.withLock { field($0.span) }
    }

    /// Changes the span while it is open; after its end nothing changes.
    func update(_ change: (inout FinishedSpan) -> Void) {
        self.state.withLock { state in
            if state.open { change(&state.span) }
        }
    }

    func finish(at nanoseconds: UInt64) {
        let finished = self.state.withLock { state -> FinishedSpan? in
            guard state.open else { return nil }
            state.open = false
            state.span.endNanoseconds = max(nanoseconds, state.span.startNanoseconds)
            return state.span
        }
        if let finished { self.recorder.add(finished) }
    }
}

/// Ended spans waiting for the exporter: a bounded queue. Adding never waits and never grows it past `capacity`; a span
/// that finds it full is dropped and counted (`parley_trace_spans_dropped_total{reason="queue_full"}`).
public final class SpanRecorder: Sendable {
    public let capacity: Int
    /// How many spans make a batch: the exporter is woken when this many wait.
    public let batchSize: Int
    /// Rung when a batch is ready, so the exporter need not wait for its schedule.
    public let batchReady = Wakeup()
    private let queue: Mutex<[FinishedSpan]>
    private let droppedFull: Counter

    public init(capacity: Int, batchSize: Int) {
        self.capacity = max(1, capacity)
        self.batchSize = max(1, min(batchSize, capacity))
        self.queue = Mutex([])
        self.droppedFull = Counter(label: TraceMetrics.dropped, dimensions: [("reason", "queue_full")], factory: ParleyMetrics.factory)
        self.queue.withLock { $0.reserveCapacity(self.capacity) }
    }

    public func add(_ span: FinishedSpan) {
        let (kept, waiting) = self.queue.withLock { queue -> (Bool, Int) in
            guard queue.count < self.capacity else { return (false, queue.count) }
            queue.append(span)
            return (true, queue.count)
        }
        if !kept {
            self.droppedFull.increment()
        } else if waiting == self.batchSize {
            self.batchReady.ring()
        }
    }

    /// Takes up to `batchSize` of the oldest spans.
    public func take() -> [FinishedSpan] {
        self.queue.withLock { queue in
            let batch = Array(queue.prefix(self.batchSize))
            queue.removeFirst(batch.count)
            return batch
        }
    }

    public var waiting: Int { self.queue.withLock { $0.count } }
}

/// The names of the export's metrics.
public enum TraceMetrics {
    public static let exported = "parley_trace_spans_exported_total"
    public static let dropped = "parley_trace_spans_dropped_total"
}

/// The body of an OTLP/HTTP trace export in the JSON encoding (`ExportTraceServiceRequest`,
/// https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): the protobuf JSON mapping, except that trace and span
/// ids are hex, not base64, and enums are numbers.
public enum OTLPJSON {
    /// One request for `spans` of the process `resource` (key, value pairs such as `service.name`).
    public static func exportRequest(_ spans: [FinishedSpan], resource: [(String, String)], scopeVersion: String) throws -> [UInt8] {
        let request = ExportRequest(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: resource.map { KeyValue(key: $0.0, value: .string($0.1)) }),
                scopeSpans: [ScopeSpans(scope: Scope(name: "parley", version: scopeVersion), spans: spans.map(Self.span))]
            )
        ])
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return Array(try encoder.encode(request))
    }

    static func span(_ span: FinishedSpan) -> OTLPSpan {
        OTLPSpan(
            traceId: span.traceID,
            spanId: span.spanID,
            parentSpanId: span.parentSpanID,
            name: span.name,
            kind: Self.kind(span.kind),
            startTimeUnixNano: String(span.startNanoseconds),
            endTimeUnixNano: String(span.endNanoseconds),
            attributes: Self.attributes(span.attributes),
            events: span.events.map {
                Event(timeUnixNano: String($0.nanosecondsSinceEpoch), name: $0.name, attributes: Self.attributes($0.attributes))
            },
            status: Self.status(span)
        )
    }

    /// OTLP's `Span.SpanKind`.
    static func kind(_ kind: SpanKind) -> Int {
        switch kind {
        case .internal: 1
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        }
    }

    /// The status set on the span; else, as OpenTelemetry's HTTP conventions say, an error for a server span answered
    /// 5xx and a client span answered 4xx or 5xx; else none (unset).
    static func status(_ span: FinishedSpan) -> Status? {
        if let status = span.status {
            switch status.code {
            case .ok: return Status(code: 1, message: nil)
            case .error: return Status(code: 2, message: status.message)
            }
        }
        let code: Int64? =
            switch span.attributes.get("http.response.status_code") {
            case .int32(let value): Int64(value)
            case .int64(let value): value
            default: nil
            }
        guard let code else { return nil }
        if code >= 500 || (span.kind == .client && code >= 400) { return Status(code: 2, message: nil) }
        return nil
    }

    static func attributes(_ attributes: SpanAttributes) -> [KeyValue] {
        var pairs: [KeyValue] = []
        // SpanAttributes is no Sequence: its own forEach walks it.
        func add(_ key: String, _ attribute: SpanAttribute) {
            if let value = Self.value(attribute) { pairs.append(KeyValue(key: key, value: value)) }
        }
        attributes.forEach(add)
        return pairs.sorted { $0.key < $1.key }
    }

    static func value(_ attribute: SpanAttribute) -> AnyValue? {
        switch attribute {
        case .int32(let value): .int(Int64(value))
        case .int64(let value): .int(value)
        case .double(let value): .double(value)
        case .bool(let value): .bool(value)
        case .string(let value): .string(value)
        case .int32Array(let values): .array(values.map { .int(Int64($0)) })
        case .int64Array(let values): .array(values.map { .int($0) })
        case .doubleArray(let values): .array(values.map { .double($0) })
        case .boolArray(let values): .array(values.map { .bool($0) })
        case .stringArray(let values): .array(values.map { .string($0) })
        case .stringConvertible(let value): .string(value.description)
        case .stringConvertibleArray(let values): .array(values.map { .string($0.description) })
        default: nil
        }
    }

    struct ExportRequest: Encodable {
        var resourceSpans: [ResourceSpans]
    }

    struct ResourceSpans: Encodable {
        var resource: Resource
        var scopeSpans: [ScopeSpans]
    }

    struct Resource: Encodable {
        var attributes: [KeyValue]
    }

    struct ScopeSpans: Encodable {
        var scope: Scope
        var spans: [OTLPSpan]
    }

    struct Scope: Encodable {
        var name: String
        var version: String
    }

    struct OTLPSpan: Encodable {
        var traceId: String
        var spanId: String
        var parentSpanId: String?
        var name: String
        var kind: Int
        /// fixed64: a string in the protobuf JSON mapping.
        var startTimeUnixNano: String
        var endTimeUnixNano: String
        var attributes: [KeyValue]
        var events: [Event]
        var status: Status?
    }

    struct Event: Encodable {
        var timeUnixNano: String
        var name: String
        var attributes: [KeyValue]
    }

    struct Status: Encodable {
        /// 1 OK, 2 ERROR.
        var code: Int
        var message: String?
    }

    struct KeyValue: Encodable {
        var key: String
        var value: AnyValue
    }

    indirect enum AnyValue: Encodable {
        case string(String)
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case array([AnyValue])

        enum CodingKeys: String, CodingKey {
            case stringValue, boolValue, intValue, doubleValue, arrayValue
        }

        struct ArrayValue: Encodable {
            var values: [AnyValue]
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .string(let value): try container.encode(value, forKey: .stringValue)
            case .bool(let value): try container.encode(value, forKey: .boolValue)
            // int64: a string in the protobuf JSON mapping.
            case .int(let value): try container.encode(String(value), forKey: .intValue)
            case .double(let value): try container.encode(value, forKey: .doubleValue)
            case .array(let values): try container.encode(ArrayValue(values: values), forKey: .arrayValue)
            }
        }
    }
}
