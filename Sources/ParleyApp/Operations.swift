import Foundation
import Hummingbird
import Metrics
import NIOCore
import ParleyCore
import ParleyStore
import Prometheus

/// The version every service reports.
public enum ParleyVersion {
    public static let current = "0.1.0"
}

/// The process's Prometheus registry, installed as the swift-metrics backend once.
enum MetricsRegistry {
    static let shared: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

/// `GET /health` and `GET /metrics`, on every service.
struct OperationsController {
    let database: Database
    let started: ContinuousClock.Instant
    let extraChecks: [String: @Sendable () async -> Bool]

    func addRoutes(to router: Router<ParleyRequestContext>) {
        let registry = MetricsRegistry.shared
        router.get("/health") { _, _ in
            var checks: [String: String] = [:]
            var healthy = true
            do {
                try await self.database.ping()
                checks["database"] = "up"
            } catch {
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
                status: healthy ? "healthy" : "unhealthy", version: ParleyVersion.current,
                uptimeSeconds: elapsed.components.seconds, checks: checks
            )
            return EditedResponse(status: healthy ? .ok : .serviceUnavailable, response: body)
        }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
}

struct HealthReport: ResponseEncodable {
    var status: String
    var version: String
    var uptimeSeconds: Int64
    var checks: [String: String]
}
