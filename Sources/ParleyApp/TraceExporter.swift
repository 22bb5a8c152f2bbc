import AsyncHTTPClient
import Foundation
public import Logging
import Metrics
import NIOCore
import NIOHTTP1
public import ParleyCore
public import ServiceLifecycle

/// Sends ended spans to an OpenTelemetry collector (or any OTLP receiver) over OTLP/HTTP with the JSON encoding: a POST
/// of an `ExportTraceServiceRequest` to the configured `…/v1/traces`, a batch at a time, when a batch fills or the
/// schedule delay passes, and once more at shutdown. Requests never wait for it: the tracer only appends to the bounded
/// ``SpanRecorder``. A batch the receiver refuses or does not take in time is dropped and counted, not retried, so a
/// receiver that is down costs one request per batch and no memory.
public struct TraceExporter: Service {
    let settings: TraceExportSettings
    let recorder: SpanRecorder
    let resource: [(String, String)]
    let logger: Logger
    let exported: Counter
    let failed: Counter

    /// The exporter for `role`'s process, and the tracer's recorder, made and installed: call once, before anything
    /// makes an HTTP client (AsyncHTTPClient takes the process's tracer when a client is made). Nil, and the tracer
    /// records nothing, when no export is configured.
    public static func bootstrap(role: ServiceRole, configuration: ParleyConfiguration, logger: Logger) -> TraceExporter? {
        guard let settings = configuration.traceExport else {
            ParleyTracing.bootstrap()
            return nil
        }
        let recorder = SpanRecorder(capacity: settings.maxQueueSize, batchSize: settings.maxBatchSize)
        ParleyTracing.bootstrap(recorder: recorder)
        let name = settings.serviceName ?? (role == .all ? "parley" : "parley-\(role.rawValue)")
        var resource = [("service.name", name), ("service.version", ParleyVersion.current)]
        if let instance = configuration.instanceName { resource.append(("service.instance.id", instance)) }
        return TraceExporter(settings: settings, recorder: recorder, resource: resource, logger: logger)
    }

    init(settings: TraceExportSettings, recorder: SpanRecorder, resource: [(String, String)], logger: Logger) {
        self.settings = settings
        self.recorder = recorder
        self.resource = resource
        self.logger = logger
        let factory = ParleyMetrics.factory
        self.exported = Counter(label: TraceMetrics.exported, factory: factory)
        self.failed = Counter(label: TraceMetrics.dropped, dimensions: [("reason", "export_failed")], factory: factory)
    }

    public func run() async throws {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(30)))
        // The exporter's own requests are not traced: each would be a span to export, forever.
        configuration.tracing.tracer = nil
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.logger.notice("exporting spans over OTLP/HTTP (JSON)", metadata: ["endpoint": .string(self.settings.endpoint)])
        await cancelWhenGracefulShutdown {
            var receiverUp = true
            while !Task.isCancelled {
                await self.recorder.batchReady.wait(timeout: self.settings.scheduleDelay)
                // Shutting down: a request from this cancelled task would fail; the flush below sends what waits.
                if Task.isCancelled { break }
                // Whole batches while there are any; a part batch once the delay has passed.
                repeat {
                    let batch = self.recorder.take()
                    if batch.isEmpty { break }
                    receiverUp = await self.export(batch, client: client, wasUp: receiverUp)
                } while self.recorder.waiting >= self.recorder.batchSize && !Task.isCancelled
            }
        }
        // Shutting down: what ended before the HTTP server stopped goes out once more, within the timeout.
        while case let batch = self.recorder.take(), !batch.isEmpty {
            guard await self.export(batch, client: client, wasUp: true) else { break }
        }
        try? await client.shutdown()
    }

    /// Sends one batch; returns whether the receiver took it. A change of that is logged once, not every batch.
    func export(_ batch: [FinishedSpan], client: HTTPClient, wasUp: Bool) async -> Bool {
        var problem: String?
        do {
            var request = HTTPClientRequest(url: self.settings.endpoint)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            for (name, value) in self.settings.headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: try OTLPJSON.exportRequest(batch, resource: self.resource, scopeVersion: ParleyVersion.current)))
            let timeout = TimeAmount.milliseconds(Int64(self.settings.timeout / .milliseconds(1)))
            let response = try await client.execute(request, timeout: timeout, logger: self.logger)
            // The answer (a partial success, or the reason for a refusal) is read and set aside.
            let body = try? await response.body.collect(upTo: 64 * 1024)
            if !(200..<300).contains(response.status.code) {
                problem = "HTTP \(response.status.code)" + (body.map { ": " + String(buffer: $0).prefix(200) } ?? "")
            }
        } catch {
            problem = "\(error)"
        }
        if let problem {
            self.failed.increment(by: batch.count)
            if wasUp {
                self.logger.warning(
                    "span export failed; spans are dropped until the receiver answers",
                    metadata: ["endpoint": .string(self.settings.endpoint), "error": .string(problem), "spans": .stringConvertible(batch.count)]
                )
            }
            return false
        }
        self.exported.increment(by: batch.count)
        if !wasUp { self.logger.notice("span export works again", metadata: ["endpoint": .string(self.settings.endpoint)]) }
        return true
    }
}
