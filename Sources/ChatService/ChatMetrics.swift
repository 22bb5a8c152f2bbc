import Metrics
import ParleyCore

/// What the chat service counts and times (docs/deploy.md, "Monitoring" lists them), made once per process so that the
/// paths that record them only increment.
package struct ChatMetrics: Sendable {
    /// The process's chat metrics; the first use registers them, at zero.
    package static let shared = ChatMetrics()

    /// New messages committed.
    let messagesStored: Counter
    /// Edits, deletions and reaction changes committed.
    let changesStored: Counter
    /// From a `sendMessage` event's arrival to its ack, for a message stored.
    let sendAck: Metrics.Timer
    /// From a message's creation (its `createdAt`) to its `newMessage` being queued on this instance's sockets: the
    /// writer's queue and commit, the bus between instances, the fan-out.
    let fanoutLatency: Metrics.Timer
    /// Writes per transaction of the message writer.
    let writerBatchSize: Recorder
    /// Writes left waiting when the message writer took its last batch.
    let writerQueueDepth: Gauge
    /// Batches of the message writer still unfinished after its stall warning's time.
    let writerStalls: Counter

    private init() {
        let factory = ParleyMetrics.factory
        self.messagesStored = Counter(label: "parley_messages_stored_total", factory: factory)
        self.changesStored = Counter(label: "parley_message_changes_stored_total", factory: factory)
        self.sendAck = Metrics.Timer(label: ParleyMetrics.Names.sendAck, factory: factory)
        self.fanoutLatency = Metrics.Timer(label: ParleyMetrics.Names.fanoutLatency, factory: factory)
        self.writerBatchSize = Recorder(label: ParleyMetrics.Names.writerBatchSize, aggregate: true, factory: factory)
        self.writerQueueDepth = Gauge(label: "parley_message_writer_queue_depth", factory: factory)
        self.writerStalls = Counter(label: "parley_message_writer_stalls_total", factory: factory)
    }

    /// Records the time from a `sendMessage` event's arrival to its ack, just sent.
    func acked(sendReceived received: ContinuousClock.Instant) {
        self.sendAck.record(duration: ContinuousClock.now - received)
    }

    /// Records how long a new message took to reach this instance's sockets, now that its event is queued on them.
    func queued(_ delivery: MessageSequencer.Delivery) {
        guard delivery.isNew else { return }
        self.fanoutLatency.recordMilliseconds(max(0, Timestamp.millis() - delivery.record.createdAt))
    }

    /// Records a batch the message writer took, and how many writes it left waiting.
    func writerTook(_ batch: Int, left: Int) {
        self.writerBatchSize.record(batch)
        self.writerQueueDepth.record(left)
    }

    /// Counts a batch of the message writer found unfinished after its stall warning's time.
    func writerStalled() {
        self.writerStalls.increment()
    }

    /// Counts the writes of one batch that stored something.
    func stored(_ outcomes: [ChatStore.WriteOutcome]) {
        var messages = 0
        var changes = 0
        for outcome in outcomes {
            switch outcome {
            case .created: messages += 1
            case .changed: changes += 1
            case .duplicate, .unchanged, .notMember, .refused: break
            }
        }
        if messages > 0 { self.messagesStored.increment(by: messages) }
        if changes > 0 { self.changesStored.increment(by: changes) }
    }
}

/// The event bus's metrics, made with the first bus of the process: only chat instances that have one export them.
struct BusMetrics: Sendable {
    static let shared = BusMetrics()

    /// From a notification's sending to its arrival, at every listening instance (the sender's own included, so one
    /// instance alone measures its round trip through PostgreSQL).
    let lag: Metrics.Timer
    /// The times the `LISTEN` connection was lost and listened again.
    let reconnects: Counter
    /// 1 while the `LISTEN` connection is up, 0 while it is away.
    let connected: Gauge

    private init() {
        let factory = ParleyMetrics.factory
        self.lag = Metrics.Timer(label: ParleyMetrics.Names.busLag, factory: factory)
        self.reconnects = Counter(label: "parley_bus_reconnects_total", factory: factory)
        self.connected = Gauge(label: "parley_bus_connected", factory: factory)
    }
}
