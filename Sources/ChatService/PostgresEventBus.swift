import Foundation
package import Logging
import Metrics
import ParleyCore
package import ParleyStore
import PostgresNIO
import SQLKit
import ServiceLifecycle
import Synchronization

/// The event bus of several chat instances on one PostgreSQL: every event is delivered in this process at once and sent to
/// the others with `NOTIFY`, small and batched, after the data it announces is committed and outside that transaction, so
/// notifications never hold up message commits (PostgreSQL serialises NOTIFYing commits on one global lock).
///
/// An instance that loses its `LISTEN` connection reconnects and reads from the store what it may have missed; the fan-out
/// fills any seq gap from the store as well, so a client never misses a message because the bus was briefly away.
package final class PostgresEventBus: ChatEventBus, Service {
    static let channel = "parley_events"
    /// NOTIFY refuses payloads of 8000 bytes or more; a batch is cut below that.
    static let payloadLimit = 7900
    /// Messages at most this old when the listener was found gone are checked again after it reconnects.
    static let catchUpMargin: Int64 = 30_000
    /// How often the recent messages are compared with what was delivered, and how far back.
    static let reconcileInterval = Duration.seconds(5)
    static let reconcileWindow: Int64 = 7_000
    static let encoder = JSONEncoder()
    static let decoder = JSONDecoder()

    let database: Database
    let instanceID: String
    let logger: Logger
    let local = InProcessEventBus()
    private let pending = Mutex<[Data]>([])
    private let queued = Wakeup()
    private let listening = Atomic<Bool>(false)
    private let metrics = BusMetrics.shared

    /// A bus for the instance `instanceID` (unique per process) over `database`, which must be PostgreSQL.
    package init(database: Database, instanceID: String, logger: Logger) {
        self.database = database
        self.instanceID = instanceID
        self.logger = logger
    }

    /// Whether the `LISTEN` connection is up, for `/health`.
    package var isListening: Bool { self.listening.load(ordering: .relaxed) }

    package func publish(_ event: ChatEvent) {
        self.local.publish(event)
        guard event.travels, let data = try? Self.encoder.encode(event) else { return }
        self.pending.withLock { $0.append(data) }
        self.queued.ring()
    }

    package func subscribe() -> AsyncStream<ChatEvent> {
        self.local.subscribe()
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.sendNotifications() }
                group.addTask { await self.receiveNotifications() }
                group.addTask { await self.pruneStoredPayloads() }
                group.addTask { await self.reconcile() }
            }
        }
    }

    // MARK: Sending

    /// Sends queued events in batches, in publish order, one notification per batch.
    func sendNotifications() async {
        while !Task.isCancelled {
            let events = self.pending.withLock { pending -> [Data] in
                defer { pending.removeAll(keepingCapacity: true) }
                return pending
            }
            if events.isEmpty {
                await self.queued.wait(timeout: .seconds(1))
                continue
            }
            for payload in NotificationPacker(origin: self.instanceID).payloads(of: events, sentAt: Timestamp.millis()) {
                await self.notify(payload)
            }
        }
    }

    /// Sends one notification, retrying while the database is away (briefly: past that, receivers catch up on their own).
    func notify(_ payload: BusPayload) async {
        var delay = Duration.milliseconds(100)
        let deadline = ContinuousClock.now + .seconds(30)
        while !Task.isCancelled {
            do {
                let text: String
                switch payload {
                case .inline(let body):
                    text = body
                case .stored(let body):
                    let id = Identifier.make()
                    try await self.database.transaction { sql in
                        try await sql.raw(
                            "INSERT INTO bus_payloads (id, body, created_at) VALUES (\(bind: id), \(bind: body), \(bind: Timestamp.millis()))"
                        ).run()
                    }
                    text =
                        #"{"origin":"# + JSONText.quote(self.instanceID) + #","sent":\#(Timestamp.millis()),"stored":"# + JSONText.quote(id) + "}"
                }
                try await self.database.read { sql in
                    _ = try await sql.raw("SELECT pg_notify(\(bind: Self.channel), \(bind: text)) AS sent").first()
                }
                return
            } catch {
                guard ContinuousClock.now < deadline else {
                    self.logger.error(
                        "cannot notify other instances; they will catch up from the store",
                        metadata: ["error": "\(String(reflecting: error))"]
                    )
                    return
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Payloads too large for a notification are kept a while for the receivers, then removed.
    func pruneStoredPayloads() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(60))
            try? await self.database.transaction { sql in
                try await sql.raw("DELETE FROM bus_payloads WHERE created_at < \(bind: Timestamp.millis() - 600_000)").run()
            }
        }
    }

    // MARK: Receiving

    /// Listens until shutdown; after losing the connection it listens again and reads from the store what it missed.
    func receiveNotifications() async {
        var missedSince: Int64?
        var delay = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                _ = try await self.database.withPostgresConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        // Listening first, then catching up: nothing falls between the two.
                        if let since = missedSince {
                            try await self.catchUp(since: since)
                            self.logger.notice("event bus listening again; caught up from the store")
                            self.metrics.reconnects.increment()
                        }
                        missedSince = nil
                        delay = .milliseconds(100)
                        self.listening.store(true, ordering: .relaxed)
                        self.metrics.connected.record(1)
                        for try await notification in notifications {
                            await self.receive(notification.payload)
                        }
                    }
                }
            } catch {
                if !Task.isCancelled {
                    self.logger.warning("event bus connection lost", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
            self.listening.store(false, ordering: .relaxed)
            self.metrics.connected.record(0)
            missedSince = missedSince ?? (Timestamp.millis() - Self.catchUpMargin)
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }

    /// Hands the events of one notification from another instance to this process's fan-out.
    func receive(_ payload: String) async {
        do {
            var notification = try Self.decoder.decode(BusNotification.self, from: Data(payload.utf8))
            if let sent = notification.sent { self.metrics.lag.recordMilliseconds(max(0, Timestamp.millis() - sent)) }
            guard notification.origin != self.instanceID else { return }
            if let stored = notification.stored {
                guard
                    let body = try await self.database.read({ sql in
                        try await sql.raw("SELECT body FROM bus_payloads WHERE id = \(bind: stored)").first()?.decode(column: "body", as: String.self)
                    })
                else { return }
                notification = try Self.decoder.decode(BusNotification.self, from: Data(body.utf8))
            }
            for event in notification.events ?? [] {
                // Members are not on the wire: the fan-out finds them in this process's membership cache.
                self.local.publish(event)
            }
        } catch {
            self.logger.error("cannot read an event bus notification", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// The safety net for a notification that was never sent: an instance that died between a commit and its NOTIFY.
    /// Every few seconds the last seconds' changes are read and whatever of them was not delivered here is delivered.
    func reconcile() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.reconcileInterval)
            guard !Task.isCancelled, self.isListening else { continue }
            do {
                try await self.catchUp(since: Timestamp.millis() - Self.reconcileWindow)
            } catch {
                self.logger.warning("cannot compare recent messages with the delivered ones", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    /// Announces every chat with message changes since `since` so the fan-out delivers whatever of them it has not delivered.
    func catchUp(since: Int64) async throws {
        for range in try await ChatStore(database: self.database).recentVersionRanges(since: since) {
            self.local.publish(.messagesMissed(chatID: range.chatID, firstVersion: range.firstVersion, lastVersion: range.lastVersion))
        }
    }
}

/// Packs encoded events into notification payloads.
struct NotificationPacker {
    /// The publishing instance.
    let origin: String

    /// `events` packed into as few notification payloads as fit under the limit; one that cannot fit is stored. Each
    /// carries `sentAt` (Unix milliseconds), from which receivers measure the bus's lag.
    func payloads(of events: [Data], sentAt: Int64) -> [BusPayload] {
        let head = Data(#"{"origin":"#.utf8) + Data(JSONText.quote(self.origin).utf8) + Data(#","sent":\#(sentAt),"events":["#.utf8)
        let tail = Data("]}".utf8)
        var payloads: [BusPayload] = []
        var batch = Data()
        func flush() {
            guard !batch.isEmpty else { return }
            payloads.append(.inline(String(decoding: head + batch + tail, as: UTF8.self)))
            batch.removeAll(keepingCapacity: true)
        }
        for event in events {
            if head.count + event.count + tail.count > PostgresEventBus.payloadLimit {
                flush()
                payloads.append(.stored(String(decoding: head + event + tail, as: UTF8.self)))
                continue
            }
            if head.count + batch.count + 1 + event.count + tail.count > PostgresEventBus.payloadLimit { flush() }
            if !batch.isEmpty { batch.append(UInt8(ascii: ",")) }
            batch.append(event)
        }
        flush()
        return payloads
    }
}

/// A notification's payload: sent as it is, or kept in `bus_payloads` when too large.
enum BusPayload: Equatable {
    case inline(String)
    case stored(String)
}

/// One notification between instances.
struct BusNotification: Codable {
    /// The publishing instance, which has delivered its own events already.
    var origin: String
    /// When the notification was sent (Unix milliseconds).
    var sent: Int64?
    var events: [ChatEvent]?
    /// The `bus_payloads` row holding the notification, when it did not fit in one.
    var stored: String?
}
