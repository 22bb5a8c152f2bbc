public import Instrumentation
public import Logging
public import Tracing

/// A W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/): the trace a piece of work belongs to, the
/// span that caused it, and the sampled flag. Parley uses it to correlate: every log line of a request carries its
/// trace id, and so do the requests it makes to other services and the mail jobs it leaves in the outbox.
public struct TraceParent: Sendable, Hashable {
    /// 32 lowercase hex digits, not all zero.
    public var traceID: String
    /// 16 lowercase hex digits, not all zero: the span this one's children name as their parent.
    public var spanID: String
    /// The trace flags; bit 0 is "sampled".
    public var flags: UInt8

    public init(traceID: String, spanID: String, flags: UInt8) {
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
    }

    /// Parses a `traceparent` header as the specification's processing model says: version 00 exactly as specified; a
    /// later version by its first four fields; anything else (upper case, wrong lengths, all-zero ids, version ff) is
    /// nil, and the receiver starts a new trace.
    public init?(header: String) {
        let fields = header.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count >= 4, let version = fields.first, version.utf8.count == 2, Self.isHex(version), version != "ff" else { return nil }
        if version == "00" {
            guard fields.count == 4 else { return nil }
        }
        let (trace, span, flags) = (fields[1], fields[2], fields[3])
        guard trace.utf8.count == 32, Self.isHex(trace), !trace.utf8.allSatisfy({ $0 == UInt8(ascii: "0") }) else { return nil }
        guard span.utf8.count == 16, Self.isHex(span), !span.utf8.allSatisfy({ $0 == UInt8(ascii: "0") }) else { return nil }
        guard flags.utf8.count == 2, Self.isHex(flags), let value = UInt8(flags, radix: 16) else { return nil }
        self.init(traceID: String(trace), spanID: String(span), flags: value)
    }

    /// The header's value, version 00.
    public var header: String {
        "00-\(self.traceID)-\(self.spanID)-" + (self.flags < 0x10 ? "0" : "") + String(self.flags, radix: 16)
    }

    /// A child of this context: the same trace and flags, a new span id.
    public func child() -> TraceParent {
        TraceParent(traceID: self.traceID, spanID: Self.randomID(bytes: 8), flags: self.flags)
    }

    /// The first span of a new trace, sampled.
    public static func newTrace() -> TraceParent {
        TraceParent(traceID: Self.randomID(bytes: 16), spanID: Self.randomID(bytes: 8), flags: 0x01)
    }

    static func isHex(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// `bytes` random bytes as lowercase hex, never all zero.
    static func randomID(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        while true {
            let values = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
            guard values.contains(where: { $0 != 0 }) else { continue }
            return values.map { ($0 < 0x10 ? "0" : "") + String($0, radix: 16) }.joined()
        }
    }
}

/// Where a service context keeps its `traceparent`.
enum TraceParentKey: ServiceContextKey {
    typealias Value = TraceParent
    static var nameOverride: String? { "traceparent" }
}

extension ServiceContext {
    /// The trace and span this context belongs to: as ``CorrelationTracer`` keeps it, or else as the process's tracer
    /// writes it into a `traceparent` (swift-otel's, when spans are exported).
    public var traceParent: TraceParent? {
        get {
            if let own = self[TraceParentKey.self] { return own }
            var carrier: [String: String] = [:]
            InstrumentationSystem.instrument.inject(self, into: &carrier, using: DictionaryInjector())
            return carrier["traceparent"].flatMap(TraceParent.init(header:))
        }
        set { self[TraceParentKey.self] = newValue }
    }
}

/// Writes propagation fields into a dictionary.
struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into dictionary: inout [String: String]) { dictionary[key] = value }
}

/// Reads propagation fields from a dictionary.
struct DictionaryExtractor: Extractor {
    func extract(key: String, from dictionary: [String: String]) -> String? { dictionary[key] }
}

/// Parley's tracer: reads and writes W3C `traceparent`, and gives each span its ids, so one trace id follows a request
/// through nginx, every service it reaches over HTTP (Hummingbird's `TracingMiddleware` extracts it, AsyncHTTPClient
/// injects it) and the mail outbox, and every log line on the way carries it (``Logger/MetadataProvider/trace``).
/// Spans record nothing else: when they are exported, swift-otel's tracer takes this one's place (``TraceExport``).
public struct CorrelationTracer: Tracer {
    public init() {}

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: "traceparent", from: carrier), let parent = TraceParent(header: value) else { return }
        context.traceParent = parent
    }

    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        // Its own key only: `traceParent` asks the process's tracer (this one) when the key is missing.
        guard let parent = context[TraceParentKey.self] else { return }
        injector.inject(parent.header, forKey: "traceparent", into: &carrier)
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> ServiceContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> CorrelationSpan {
        var context = context()
        context.traceParent = context[TraceParentKey.self]?.child() ?? TraceParent.newTrace()
        return CorrelationSpan(context: context, operationName: operationName)
    }

    public func forceFlush() {}
}

/// A span that carries its context's ids and records nothing.
public struct CorrelationSpan: Span {
    public let context: ServiceContext
    private let name: String

    init(context: ServiceContext, operationName: String) {
        self.context = context
        self.name = operationName
    }

    public var operationName: String {
        get { self.name }
        nonmutating set {}
    }

    public var attributes: SpanAttributes {
        get { [:] }
        nonmutating set {}
    }

    public var isRecording: Bool { false }

    public func setStatus(_ status: SpanStatus) {}

    public func addEvent(_ event: SpanEvent) {}

    public func recordError(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> some TracerInstant) {}

    public func addLink(_ link: SpanLink) {}

    public func end(at instant: @autoclosure () -> some TracerInstant) {}
}

extension Logger.MetadataProvider {
    /// `traceId` and `spanId` of the current task's trace, on every log line written within it.
    public static let trace = Logger.MetadataProvider {
        guard let parent = ServiceContext.current?.traceParent else { return [:] }
        return ["traceId": .string(parent.traceID), "spanId": .string(parent.spanID)]
    }
}

/// Installs the process's tracer once, before anything makes an HTTP client (which takes the tracer when it is made).
public enum ParleyTracing {
    public static func bootstrap() {
        InstrumentationSystem.bootstrap(CorrelationTracer())
    }

    /// Runs `body` in the trace of `header` (a stored `traceparent`), as a child span; in a new trace when there is none.
    public static func continuing<T>(_ header: String?, _ operation: String, _ body: () async throws -> T) async rethrows -> T {
        try await withSpan(operation, context: Self.context(parent: header), ofKind: .consumer) { _ in try await body() }
    }

    /// Runs `body` as a producer's span: work of the process's own that no request is waiting for (a timer's) and that
    /// leaves work for later (a mail job that keeps this trace). A child of `parent`, the stored `traceparent` of the
    /// work that made it due (the send that made a mail owed); the first span of a new trace when there is none.
    public static func producing<T>(_ operation: String, parent: TraceParent? = nil, _ body: () async throws -> T) async rethrows -> T {
        try await withSpan(operation, context: Self.context(parent: parent?.header), ofKind: .producer) { _ in try await body() }
    }

    /// A top-level context whose parent is `header`, when it is a valid `traceparent`.
    static func context(parent header: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        // Through the process's tracer, which keeps the parent its own way (and ignores a malformed one).
        if let header { InstrumentationSystem.instrument.extract(["traceparent": header], into: &context, using: DictionaryExtractor()) }
        return context
    }

    /// The current task's `traceparent` header, to store with work done later (a mail job).
    public static var currentHeader: String? { Self.current?.header }

    /// The current task's trace, to keep with work done later (a send's, with the mail it makes owed).
    public static var current: TraceParent? { ServiceContext.current?.traceParent }
}
