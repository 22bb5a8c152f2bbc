import Foundation
import Hummingbird
import NIOCore
import ParleyCore
import ParleyStore
import Prometheus
import Synchronization

/// The version every service reports.
public enum ParleyVersion {
    public static let current = "0.1.0"
}

/// `GET /health` and `GET /metrics`, on every service.
package struct OperationsController: Sendable {
    let database: Database
    let started: ContinuousClock.Instant
    /// Checks beside the database's, by name: a chat instance's file store (`fileStore`), and its event bus on PostgreSQL
    /// (`eventBus`). Each answers within its own bound, and they run one after another.
    var extraChecks: [String: @Sendable () async -> Bool]
    /// Gauges set from what they measure at each scrape, so they are never stale: the data folder's free space, the
    /// sockets of a chat instance.
    var scrapeGauges: [@Sendable () -> Void] = []

    func addRoutes(to router: Router<ParleyRequestContext>) {
        let registry = ParleyMetrics.registry
        router.get("/health") { _, _ in
            var checks: [String: String] = [:]
            var healthy = true
            if await Self.answers(within: .seconds(2), self.database.ping) {
                checks["database"] = "up"
            } else {
                checks["database"] = "down"
                healthy = false
            }
            for (name, check) in self.extraChecks {
                let up = await check()
                checks[name] = up ? "up" : "down"
                healthy = healthy && up
            }
            let elapsed = ContinuousClock.now - self.started
            let body = HealthReport(
                status: healthy ? "healthy" : "unhealthy",
                version: ParleyVersion.current,
                uptimeSeconds: elapsed.components.seconds,
                checks: checks
            )
            return EditedResponse(status: healthy ? .ok : .serviceUnavailable, response: body)
        }
        router.get("/metrics") { _, _ in
            for refresh in self.scrapeGauges { refresh() }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
}

extension OperationsController {
    /// Whether `check` succeeds within `limit`: a health check must answer promptly even when its database hangs. A
    /// task group would wait for the check at its end, and a check need not end when cancelled (a PostgreSQL pool's
    /// request for a connection waits while the database refuses them): so the check runs in a task of its own, which
    /// is cancelled at the limit and not waited for.
    package static func answers(within limit: Duration, _ check: @escaping @Sendable () async throws -> Void) async -> Bool {
        let answer = HealthAnswer()
        return await withCheckedContinuation { continuation in
            answer.start(continuation)
            let checking = Task { answer.finish((try? await check()) != nil) }
            Task {
                try? await Task.sleep(for: limit)
                checking.cancel()
                answer.finish(false)
            }
        }
    }
}

/// The first of a health check's two outcomes (it answered, or its time ran out), handed on once.
private final class HealthAnswer: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Bool, Never>?, done: Bool)>((nil, false))

    func start(_ continuation: CheckedContinuation<Bool, Never>) {
        self.state.withLock { $0.continuation = continuation }
    }

    func finish(_ up: Bool) {
        let continuation = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard !state.done else { return nil }
            state.done = true
            return state.continuation
        }
        continuation?.resume(returning: up)
    }
}

struct HealthReport: ResponseEncodable {
    var status: String
    var version: String
    var uptimeSeconds: Int64
    var checks: [String: String]
}
