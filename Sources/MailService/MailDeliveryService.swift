import Foundation
public import Logging
import Metrics
public import ParleyCore
public import ParleyStore
public import ServiceLifecycle

/// Drains the mail outbox: claims due jobs, delivers them, records the outcome, retries with exponential backoff.
public struct MailDeliveryService: Service {
    /// How hard to try.
    public struct Settings: Sendable {
        public var maxAttempts: Int
        public var retryBaseSeconds: Double
        public var pollSeconds: Double
        /// How long a claimed job stays claimed without renewal; past it, another worker may take it (its worker died).
        /// The worker renews its leases while it works, so a slow server does not make a live worker's jobs look abandoned.
        public var leaseSeconds: Double
        public var batchSize: Int = 4
        /// How often the outbox's backlog is read for the metrics.
        public var backlogInterval: Duration = .seconds(5)

        public init(configuration: ParleyConfiguration) {
            self.maxAttempts = configuration.mailMaxAttempts
            self.retryBaseSeconds = configuration.mailRetryBaseSeconds
            self.pollSeconds = configuration.mailPollSeconds
            self.leaseSeconds = Double(configuration.mailLeaseSeconds)
        }
    }

    let outbox: MailOutbox
    let transport: any MailTransport
    let settings: Settings
    let wakeup: Wakeup
    let worker: String
    let revise: Revision?
    let logger: Logger
    let metrics = MailMetrics.shared

    /// Brings a job up to date just before it is sent: the job to send (its payload revised), or nil when it is no longer
    /// needed (dropped, not sent).
    public typealias Revision = @Sendable (MailJob) async throws -> MailJob?

    /// A worker named `worker` (unique per process) that sends through `transport`, each job first passed to `revise`.
    public init(
        outbox: MailOutbox,
        transport: any MailTransport,
        settings: Settings,
        wakeup: Wakeup,
        worker: String,
        revise: Revision? = nil,
        logger: Logger
    ) {
        self.outbox = outbox
        self.transport = transport
        self.settings = settings
        self.wakeup = wakeup
        self.worker = worker
        self.revise = revise
        self.logger = logger
    }

    public func run() async throws {
        self.logger.info("mail worker started", metadata: ["worker": .string(self.worker)])
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.reportBacklog() }
                while !Task.isCancelled {
                    let handled = await self.drainOnce()
                    // A full batch means more may be due: go again without waiting.
                    if handled < self.settings.batchSize {
                        await self.wakeup.wait(timeout: .milliseconds(Int(self.settings.pollSeconds * 1000)))
                    }
                }
            }
        }
        self.logger.info("mail worker stopped", metadata: ["worker": .string(self.worker)])
    }

    /// Claims and handles one batch of due jobs; returns how many it claimed.
    @discardableResult
    public func drainOnce() async -> Int {
        let jobs: [MailJob]
        do {
            jobs = try await self.outbox.claim(
                worker: self.worker,
                limit: self.settings.batchSize,
                leaseMillis: self.leaseMillis,
                now: Timestamp.millis(),
                maxAttempts: self.settings.maxAttempts
            )
        } catch is CancellationError {
            return 0  // shutting down
        } catch {
            self.logger.error("cannot claim mail jobs", metadata: ["error": "\(error)"])
            return 0
        }
        guard !jobs.isEmpty else { return 0 }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.renewLeases() }
            for job in jobs {
                await self.handle(job)
            }
            group.cancelAll()
        }
        return jobs.count
    }

    var leaseMillis: Int64 { Int64(self.settings.leaseSeconds * 1000) }

    /// Reads the outbox's backlog into the metrics every ``Settings/backlogInterval`` (one small query), so that an
    /// alert sees mail that does not go out, whichever worker should have sent it.
    func reportBacklog() async {
        while !Task.isCancelled {
            do {
                self.metrics.report(try await self.outbox.backlog(), now: Timestamp.millis())
            } catch {
                if !Task.isCancelled { self.logger.warning("cannot read the mail outbox's backlog", metadata: ["error": "\(error)"]) }
            }
            try? await Task.sleep(for: self.settings.backlogInterval)
        }
    }

    /// Keeps this worker's claimed jobs its own while it works through them, a third of a lease at a time.
    func renewLeases() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(self.settings.leaseSeconds * 1000 / 3)))
            guard !Task.isCancelled else { return }
            do {
                try await self.outbox.renewLeases(worker: self.worker, leaseMillis: self.leaseMillis, now: Timestamp.millis())
            } catch {
                self.logger.warning("cannot renew mail leases", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Delivers `job` in the trace of the work that queued it: its log lines carry the same trace id.
    func handle(_ job: MailJob) async {
        await ParleyTracing.continuing(job.traceParent, "mail \(job.template)") {
            await self.deliver(job)
        }
    }

    func deliver(_ job: MailJob) async {
        var logger = self.logger
        logger[metadataKey: "mailJob"] = .string(job.id)
        logger[metadataKey: "attempt"] = .stringConvertible(job.attempts)
        if let requestID = job.requestID { logger[metadataKey: "requestId"] = .string(requestID) }
        do {
            var job = job
            if let revise = self.revise {
                guard let revised = try await revise(job) else {
                    try await self.outbox.markDropped(job, worker: self.worker, now: Timestamp.millis())
                    self.metrics.dropped.increment()
                    logger.info("mail no longer needed", metadata: ["template": .string(job.template)])
                    return
                }
                job = revised
            }
            let mail = try MailTemplates.render(template: job.template, recipient: job.recipient, payload: job.payload)
            try await self.transport.deliver(mail, logger: logger)
            try await self.outbox.markSent(job, worker: self.worker, now: Timestamp.millis())
            self.metrics.sent.increment()
            logger.info("mail sent", metadata: ["to": .string(job.recipient), "template": .string(job.template)])
        } catch {
            self.metrics.failed.increment()
            let transient = (error as? MailDeliveryError)?.isTransient ?? !(error is MailTemplates.UnknownTemplate)
            let retryAt: Int64? =
                transient && job.attempts < self.settings.maxAttempts
                ? Timestamp.millis() + Int64(self.backoff(afterAttempt: job.attempts) * 1000) : nil
            do {
                try await self.outbox.markFailed(
                    job,
                    worker: self.worker,
                    error: String(describing: error).prefix(1000).description,
                    retryAt: retryAt,
                    now: Timestamp.millis()
                )
            } catch {
                // The lease runs out and the job is claimed again: late, but never lost.
                logger.error("cannot record mail failure", metadata: ["error": "\(error)"])
            }
            if retryAt != nil {
                logger.warning("mail delivery failed; will retry", metadata: ["to": .string(job.recipient), "error": "\(error)"])
            } else {
                logger.error("mail delivery failed; giving up", metadata: ["to": .string(job.recipient), "error": "\(error)"])
            }
        }
    }

    /// base × 2^(attempt−1), at most an hour, with up to 20 % jitter so retries of many jobs spread out.
    func backoff(afterAttempt attempt: Int) -> Double {
        let exponential = self.settings.retryBaseSeconds * pow(2, Double(max(0, attempt - 1)))
        let capped = min(3600, exponential)
        return capped * Double.random(in: 1.0...1.2)
    }
}
