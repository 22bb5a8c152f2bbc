import Foundation
import ParleyCore
public import SQLKit

/// A mail waiting to be delivered: which template, to whom, with what values.
public struct MailJob: Sendable, Equatable {
    public var id: String
    public var template: String
    public var recipient: String
    /// Template values as JSON text; emptied once the mail is sent, so no login code outlives its delivery.
    public var payload: String
    public var requestID: String?
    /// The W3C `traceparent` of the work that queued the mail: its delivery's log lines carry the same trace id.
    public var traceParent: String?
    /// How many delivery attempts have started, this one included.
    public var attempts: Int
}

/// The mails not delivered yet. Every job is due from the moment it is queued (a retry waits a little), so the oldest one's
/// age is how long mail has been stuck.
public struct MailBacklog: Sendable, Equatable {
    /// Jobs pending or being sent.
    public var waiting: Int
    /// When the oldest of them was queued (Unix milliseconds); nil when none waits.
    public var oldestQueuedAt: Int64?
}

/// The transactional outbox of mails: written in the same transaction as the data it announces, drained by the mail service.
public struct MailOutbox: Sendable {
    public let database: Database

    /// Uses `database`.
    public init(database: Database) {
        self.database = database
    }

    /// Queues a mail inside the caller's transaction `sql`.
    public static func enqueue(
        template: String,
        recipient: String,
        payload: String,
        requestID: String?,
        traceParent: String? = nil,
        now: Int64,
        in sql: any SQLDatabase
    ) async throws {
        try await sql.raw(
            """
            INSERT INTO mail_outbox (id, template, recipient, payload, request_id, trace_parent, status, attempts, next_attempt_at, created_at)
            VALUES (\(bind: Identifier.make()), \(bind: template), \(bind: recipient), \(bind: payload), \(bind: requestID), \(bind: traceParent), 'pending', 0, \(bind: now), \(bind: now))
            """
        ).run()
    }

    /// Claims up to `limit` due jobs for `worker` for `leaseMillis`; a job whose lease ran out (its worker died) is due again,
    /// unless it has had `maxAttempts` attempts: a job that kills every worker trying it must not be retried forever.
    public func claim(worker: String, limit: Int, leaseMillis: Int64, now: Int64, maxAttempts: Int = .max) async throws -> [MailJob] {
        // Several workers may run: PostgreSQL skips rows another transaction holds; SQLite has one writer at a time anyway.
        let lock: SQLQueryString = self.database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await self.database.transaction { sql in
            try await sql.raw(
                """
                UPDATE mail_outbox SET status = 'failed', payload = '{}', locked_by = NULL, locked_until = NULL,
                       last_error = 'gave up: the worker delivering it stopped during the last allowed attempt'
                WHERE status = 'sending' AND locked_until < \(bind: now) AND attempts >= \(bind: maxAttempts)
                """
            ).run()
            let rows = try await sql.raw(
                """
                UPDATE mail_outbox SET status = 'sending', attempts = attempts + 1, locked_by = \(bind: worker), locked_until = \(bind: now + leaseMillis)
                WHERE id IN (
                    SELECT id FROM mail_outbox
                    WHERE (status = 'pending' AND next_attempt_at <= \(bind: now)) OR (status = 'sending' AND locked_until < \(bind: now))
                    ORDER BY next_attempt_at LIMIT \(bind: limit)\(lock)
                )
                RETURNING id, template, recipient, payload, request_id, trace_parent, attempts
                """
            ).all()
            return try rows.map { row in
                MailJob(
                    id: try row.decode(column: "id", as: String.self),
                    template: try row.decode(column: "template", as: String.self),
                    recipient: try row.decode(column: "recipient", as: String.self),
                    payload: try row.decode(column: "payload", as: String.self),
                    requestID: try row.decode(column: "request_id", as: String?.self),
                    traceParent: try row.decode(column: "trace_parent", as: String?.self),
                    attempts: try row.decode(column: "attempts", as: Int.self)
                )
            }
        }
    }

    /// Extends the leases of every job `worker` holds.
    public func renewLeases(worker: String, leaseMillis: Int64, now: Int64) async throws {
        try await self.database.transaction { sql in
            try await sql.raw(
                "UPDATE mail_outbox SET locked_until = \(bind: now + leaseMillis) WHERE status = 'sending' AND locked_by = \(bind: worker)"
            ).run()
        }
    }

    /// Records a delivery and forgets the template values.
    public func markSent(_ job: MailJob, worker: String, now: Int64) async throws {
        try await self.database.transaction { sql in
            try await sql.raw(
                """
                UPDATE mail_outbox SET status = 'sent', sent_at = \(bind: now), payload = '{}', locked_by = NULL, locked_until = NULL, last_error = NULL
                WHERE id = \(bind: job.id) AND locked_by = \(bind: worker)
                """
            ).run()
        }
    }

    /// Records that the job was not sent because it was no longer needed (a missed-message mail whose messages were all
    /// read meanwhile), and forgets its values.
    public func markDropped(_ job: MailJob, worker: String, now: Int64) async throws {
        try await self.database.transaction { sql in
            try await sql.raw(
                """
                UPDATE mail_outbox SET status = 'dropped', sent_at = \(bind: now), payload = '{}', locked_by = NULL, locked_until = NULL
                WHERE id = \(bind: job.id) AND locked_by = \(bind: worker)
                """
            ).run()
        }
    }

    /// Schedules another attempt at `retryAt`, or gives up for good when `retryAt` is nil; keeps the error either way.
    public func markFailed(_ job: MailJob, worker: String, error: String, retryAt: Int64?, now: Int64) async throws {
        try await self.database.transaction { sql in
            if let retryAt {
                try await sql.raw(
                    """
                    UPDATE mail_outbox SET status = 'pending', next_attempt_at = \(bind: retryAt), last_error = \(bind: error), locked_by = NULL, locked_until = NULL
                    WHERE id = \(bind: job.id) AND locked_by = \(bind: worker)
                    """
                ).run()
            } else {
                try await sql.raw(
                    """
                    UPDATE mail_outbox SET status = 'failed', last_error = \(bind: error), payload = '{}', locked_by = NULL, locked_until = NULL
                    WHERE id = \(bind: job.id) AND locked_by = \(bind: worker)
                    """
                ).run()
            }
        }
    }

    /// How many mails wait for delivery (due or being sent) and when the oldest of them was queued, in one query over the
    /// `(status, next_attempt_at)` index: the mail worker's gauges.
    public func backlog() async throws -> MailBacklog {
        try await self.database.read { sql in
            let row = try await sql.raw(
                "SELECT COUNT(*) AS waiting, MIN(created_at) AS oldest FROM mail_outbox WHERE status IN ('pending', 'sending')"
            ).first()
            return MailBacklog(
                waiting: try row?.decode(column: "waiting", as: Int.self) ?? 0,
                oldestQueuedAt: try row?.decode(column: "oldest", as: Int64?.self)
            )
        }
    }

    /// Counts jobs by status, for metrics and tests.
    public func counts() async throws -> [String: Int] {
        try await self.database.read { sql in
            var counts: [String: Int] = [:]
            for row in try await sql.raw("SELECT status, COUNT(*) AS n FROM mail_outbox GROUP BY status").all() {
                counts[try row.decode(column: "status", as: String.self)] = try row.decode(column: "n", as: Int.self)
            }
            return counts
        }
    }
}
