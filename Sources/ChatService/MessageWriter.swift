import Logging
public import ServiceLifecycle
import Synchronization

/// Group commit: concurrent sends and changes (edits, deletes, reactions) are stored by one writer, many per transaction,
/// published in version order, and answered together once committed.
///
/// A statement costs far more than the row it writes (an async hop to the driver, a round trip, a commit that may fsync),
/// so rows per statement, not rows per second of raw storage, decide how many messages per second Parley takes.
///
/// The writer is a `Service`: its ``run()`` is the one loop that writes, so it must run (in the process's service group,
/// or beside a test) for any send to be answered. On graceful shutdown it stores everything already queued, then stops;
/// a send submitted after that fails.
///
/// A batch that has not finished after ``stallWarning`` is logged (a warning, and `parley_message_writer_stalls_total`),
/// and so is its end: every send waits behind it, and nothing else would tell where.
public final class MessageWriter: Service, Sendable {
    private struct Request: Sendable {
        var write: ChatStore.Write
        var pending: PendingAppend
    }

    private struct State {
        var pending: [Request] = []
        /// The loop, waiting for a send.
        var idle: CheckedContinuation<Void, Never>?
        /// Submitters waiting for room in the queue.
        var waiting: [CheckedContinuation<Void, Never>] = []
        /// Messages queued per sender.
        var queuedBySender: [String: Int] = [:]
        /// Submitters waiting for their sender's share of the queue, by sender.
        var waitingBySender: [String: [CheckedContinuation<Void, Never>]] = [:]
        /// Shutdown began: what is queued is written, then the loop ends.
        var finishing = false
        /// The loop ended: nothing queued from now on would ever be written.
        var stopped = false
        /// The batch being written: since when, how many writes, and whether it was logged as stalled.
        var writing: (since: ContinuousClock.Instant, count: Int, stalled: Bool)?
    }

    /// The most messages one transaction takes; the rest wait for the next, so no batch's statements grow without bound.
    static let maxBatch = 256
    /// The most messages queued at once: beyond it submitters wait, so clients that send without waiting for acks
    /// cannot grow the queue without bound.
    static let maxQueued = 4096
    /// The most messages one sender may have queued: beyond it that sender waits, and the rest of the queue stays
    /// for everyone else (one user sending without waiting for acks cannot stall the others).
    static let maxQueuedPerSender = 256

    let store: ChatStore
    /// Hears every created or changed message, in version order per chat, after its commit and before its writer's answer.
    private let published: @Sendable (ChatStore.WriteOutcome) async -> Void
    /// How long a batch may take before it is logged as stalled (a batch takes milliseconds).
    let stallWarning: Duration
    private let logger: Logger
    private let state = Mutex(State())
    private let metrics = ChatMetrics.shared

    init(
        store: ChatStore,
        stallWarning: Duration = .seconds(10),
        logger: Logger = Logger(label: "parley.writer"),
        published: @escaping @Sendable (ChatStore.WriteOutcome) async -> Void
    ) {
        self.store = store
        self.stallWarning = stallWarning
        self.logger = logger
        self.published = published
    }

    /// Writes batches as sends arrive until graceful shutdown (or cancellation), then writes what is still queued.
    public func run() async {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.watchForStalls() }
                    // While a batch is being written the next one gathers: the busier the server, the bigger the batches.
                    while let batch = await self.nextBatch() {
                        await self.writeWatched(batch)
                    }
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                self.finish()
            }
        } onCancel: {
            self.finish()
        }
        let (late, waiting) = self.state.withLock { state -> ([Request], [CheckedContinuation<Void, Never>]) in
            state.stopped = true
            defer {
                state.pending = []
                state.waiting = []
                state.waitingBySender = [:]
                state.queuedBySender = [:]
            }
            return (state.pending, state.waiting + state.waitingBySender.values.joined())
        }
        for continuation in waiting { continuation.resume() }
        for request in late { request.pending.complete(.failure(WriterStopped())) }
    }

    /// Stores `draft` with the chat's next seq in the next batch; answers once that batch is committed and published.
    func append(_ draft: ChatStore.MessageDraft) async throws -> ChatStore.WriteOutcome {
        try await self.submit(draft).outcome()
    }

    /// Queues `draft` and returns at once (unless the queue is full): drafts submitted one after another by one caller
    /// get seqs in that order.
    func submit(_ draft: ChatStore.MessageDraft) async -> PendingAppend {
        await self.submit(.send(draft))
    }

    /// Queues `write` (see ``submit(_:)-(MessageDraft)``): writes submitted one after another by one caller are carried
    /// out in that order.
    func submit(_ write: ChatStore.Write) async -> PendingAppend {
        let pending = PendingAppend()
        while true {
            enum Queued {
                case yes(CheckedContinuation<Void, Never>?)
                case full, senderFull, stopped
            }
            let sender = write.userID
            let queued = self.state.withLock { state -> Queued in
                guard !state.stopped else { return .stopped }
                guard state.queuedBySender[sender, default: 0] < Self.maxQueuedPerSender else { return .senderFull }
                guard state.pending.count < Self.maxQueued else { return .full }
                state.pending.append(Request(write: write, pending: pending))
                state.queuedBySender[sender, default: 0] += 1
                defer { state.idle = nil }
                return .yes(state.idle)
            }
            switch queued {
            case .yes(let idle):
                // A lone send waits for no one: the loop wakes at once.
                idle?.resume()
                return pending
            case .stopped:
                pending.complete(.failure(WriterStopped()))
                return pending
            case .senderFull:
                await withCheckedContinuation { continuation in
                    let roomNow = self.state.withLock { state -> Bool in
                        guard state.queuedBySender[sender, default: 0] >= Self.maxQueuedPerSender, !state.stopped else { return true }
                        state.waitingBySender[sender, default: []].append(continuation)
                        return false
                    }
                    if roomNow { continuation.resume() }
                }
            case .full:
                await withCheckedContinuation { continuation in
                    let roomNow = self.state.withLock { state -> Bool in
                        guard state.pending.count >= Self.maxQueued, !state.stopped else { return true }
                        state.waiting.append(continuation)
                        return false
                    }
                    if roomNow { continuation.resume() }
                }
            }
        }
    }

    /// The next batch to write, waiting for one; nil once shutdown began and the queue is empty.
    private func nextBatch() async -> [Request]? {
        while true {
            enum Next {
                case batch([Request], [CheckedContinuation<Void, Never>], left: Int)
                case finished, wait
            }
            let next = self.state.withLock { state -> Next in
                guard !state.pending.isEmpty else { return state.finishing ? .finished : .wait }
                let batch = Array(state.pending.prefix(Self.maxBatch))
                state.pending.removeFirst(batch.count)
                var woken = state.waiting
                state.waiting.removeAll()
                for request in batch {
                    let sender = request.write.userID
                    let left = state.queuedBySender[sender, default: 1] - 1
                    state.queuedBySender[sender] = left > 0 ? left : nil
                    if let waiters = state.waitingBySender.removeValue(forKey: sender) { woken += waiters }
                }
                return .batch(batch, woken, left: state.pending.count)
            }
            switch next {
            case .batch(let batch, let waiting, let left):
                for continuation in waiting { continuation.resume() }
                self.metrics.writerTook(batch.count, left: left)
                return batch
            case .finished:
                return nil
            case .wait:
                await withCheckedContinuation { continuation in
                    let ready = self.state.withLock { state -> Bool in
                        guard state.pending.isEmpty, !state.finishing else { return true }
                        state.idle = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
        }
    }

    /// Lets the loop end once the queue is empty.
    private func finish() {
        let idle = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finishing = true
            defer { state.idle = nil }
            return state.idle
        }
        idle?.resume()
    }

    /// Writes `batch`, marked as the batch being written for ``watchForStalls()``; logs its end if it was stalled.
    private func writeWatched(_ batch: [Request]) async {
        let started = ContinuousClock.now
        self.state.withLock { $0.writing = (started, batch.count, false) }
        await self.write(batch)
        let stalled = self.state.withLock { state -> Bool in
            defer { state.writing = nil }
            return state.writing?.stalled ?? false
        }
        if stalled {
            self.logger.notice(
                "the message writer's stalled batch finished",
                metadata: ["writes": "\(batch.count)", "after": "\(ContinuousClock.now - started)"]
            )
        }
    }

    /// Until cancelled, looks a few times per ``stallWarning`` at the batch being written, and logs it once when it has
    /// taken longer than that.
    private func watchForStalls() async {
        while (try? await Task.sleep(for: self.stallWarning / 4)) != nil {
            let now = ContinuousClock.now
            let stalled = self.state.withLock { state -> (count: Int, since: ContinuousClock.Instant)? in
                guard let writing = state.writing, !writing.stalled, now - writing.since >= self.stallWarning else { return nil }
                state.writing?.stalled = true
                return (writing.count, writing.since)
            }
            guard let stalled else { continue }
            self.metrics.writerStalled()
            self.logger.warning(
                "the message writer's batch has not finished: every send waits behind it",
                metadata: ["writes": "\(stalled.count)", "after": "\(now - stalled.since)"]
            )
        }
    }

    private func write(_ batch: [Request]) async {
        let outcomes: [ChatStore.WriteOutcome]
        do {
            outcomes = try await self.store.write(batch.map(\.write))
        } catch {
            // The batch rolled back whole: e.g. another process stored one of its clientMessageIds first, or a deadlock
            // between processes. Each message alone then gets the answer it would have had on its own.
            for request in batch {
                do {
                    let outcome = try await self.store.write(request.write)
                    self.metrics.stored([outcome])
                    await self.published(outcome)
                    request.pending.complete(.success(outcome))
                } catch {
                    request.pending.complete(.failure(error))
                }
            }
            return
        }
        self.metrics.stored(outcomes)
        for outcome in outcomes {
            await self.published(outcome)
        }
        for (request, outcome) in zip(batch, outcomes) {
            request.pending.complete(.success(outcome))
        }
    }
}

/// A send submitted after the writer stopped (the process is shutting down): a fault of the server, never stored.
struct WriterStopped: Error, CustomStringConvertible {
    var description: String { "the message writer has stopped" }
}

/// A message queued in the writer: its outcome, once the batch holding it is committed.
final class PendingAppend: Sendable {
    private enum Slot {
        case waiting(CheckedContinuation<ChatStore.WriteOutcome, any Error>?)
        case done(Result<ChatStore.WriteOutcome, any Error>)
    }

    private let slot = Mutex(Slot.waiting(nil))

    /// Waits for the outcome.
    func outcome() async throws -> ChatStore.WriteOutcome {
        try await withCheckedThrowingContinuation { continuation in
            let result = self.slot.withLock { slot -> Result<ChatStore.WriteOutcome, any Error>? in
                if case .done(let result) = slot { return result }
                slot = .waiting(continuation)
                return nil
            }
            if let result { continuation.resume(with: result) }
        }
    }

    func complete(_ result: Result<ChatStore.WriteOutcome, any Error>) {
        let continuation = self.slot.withLock { slot -> CheckedContinuation<ChatStore.WriteOutcome, any Error>? in
            guard case .waiting(let continuation) = slot else { return nil }
            slot = .done(result)
            return continuation
        }
        continuation?.resume(with: result)
    }
}
