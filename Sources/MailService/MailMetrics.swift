import Metrics
import ParleyCore
import ParleyStore

/// What the mail worker counts and reports (docs/deploy.md, "Monitoring"), made with the first worker of the process:
/// only processes that run the mail service export them.
struct MailMetrics: Sendable {
    static let shared = MailMetrics()

    /// Mails delivered to the SMTP server.
    let sent: Counter
    /// Delivery attempts that failed (each one retried later, or given up).
    let failed: Counter
    /// Mails no longer needed when their turn came (missed-message mails whose messages were read meanwhile).
    let dropped: Counter
    /// Mails waiting for delivery: due, or being sent.
    let outboxWaiting: Gauge
    /// How long the oldest of them has waited since it was queued; 0 when none waits.
    let outboxOldestAge: Gauge

    private init() {
        let factory = ParleyMetrics.factory
        let deliveries = "parley_mail_deliveries_total"
        self.sent = Counter(label: deliveries, dimensions: [("outcome", "sent")], factory: factory)
        self.failed = Counter(label: deliveries, dimensions: [("outcome", "failed")], factory: factory)
        self.dropped = Counter(label: deliveries, dimensions: [("outcome", "dropped")], factory: factory)
        self.outboxWaiting = Gauge(label: "parley_mail_outbox_waiting", factory: factory)
        self.outboxOldestAge = Gauge(label: "parley_mail_outbox_oldest_age_seconds", factory: factory)
    }

    /// Sets the outbox gauges from `backlog`, read at `now` (Unix milliseconds).
    func report(_ backlog: MailBacklog, now: Int64) {
        self.outboxWaiting.record(backlog.waiting)
        self.outboxOldestAge.record(Double(backlog.oldestQueuedAt.map { max(0, now - $0) } ?? 0) / 1000)
    }
}
