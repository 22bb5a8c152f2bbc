import Synchronization

/// Group commit: concurrent sends are stored by one writer, many per transaction with multi-row statements,
/// published in seq order, and answered together once committed.
///
/// A statement costs far more than the row it writes (an async hop to the driver, a round trip, a commit that may fsync),
/// so rows per statement, not rows per second of raw storage, decide how many messages per second Parley takes.
final class MessageWriter: Sendable {
    private struct Request: Sendable {
        var draft: ChatStore.MessageDraft
        var pending: PendingAppend
    }

    private struct State {
        var pending: [Request] = []
        var writing = false
        /// Submitters waiting for room in the queue.
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    /// The most messages one transaction takes; the rest wait for the next, so no batch's statements grow without bound.
    static let maxBatch = 256
    /// The most messages queued at once: beyond it submitters wait, so clients that send without waiting for acks
    /// cannot grow the queue without bound.
    static let maxQueued = 4096

    let store: ChatStore
    /// Hears every created message, in seq order per chat, after its commit and before its sender's answer.
    private let published: @Sendable (MessageRecord) async -> Void
    private let state = Mutex(State())

    init(store: ChatStore, published: @escaping @Sendable (MessageRecord) async -> Void) {
        self.store = store
        self.published = published
    }

    /// Stores `draft` with the chat's next seq in the next batch; answers once that batch is committed and published.
    func append(_ draft: ChatStore.MessageDraft) async throws -> ChatStore.AppendOutcome {
        try await self.submit(draft).outcome()
    }

    /// Queues `draft` and returns at once (unless the queue is full): drafts submitted one after another by one caller
    /// get seqs in that order.
    func submit(_ draft: ChatStore.MessageDraft) async -> PendingAppend {
        let pending = PendingAppend()
        while true {
            let (queued, startWriter) = self.state.withLock { state -> (Bool, Bool) in
                guard state.pending.count < Self.maxQueued else { return (false, false) }
                state.pending.append(Request(draft: draft, pending: pending))
                guard !state.writing else { return (true, false) }
                state.writing = true
                return (true, true)
            }
            // While a batch is being written the next one gathers: the busier the server, the bigger the batches.
            if startWriter { Task { await self.drain() } }
            if queued { return pending }
            await withCheckedContinuation { continuation in
                let roomNow = self.state.withLock { state -> Bool in
                    guard state.pending.count >= Self.maxQueued else { return true }
                    state.waiting.append(continuation)
                    return false
                }
                if roomNow { continuation.resume() }
            }
        }
    }

    private func drain() async {
        while true {
            let (batch, waiting) = self.state.withLock { state -> ([Request], [CheckedContinuation<Void, Never>]) in
                guard !state.pending.isEmpty else {
                    state.writing = false
                    return ([], [])
                }
                let batch = Array(state.pending.prefix(Self.maxBatch))
                state.pending.removeFirst(batch.count)
                defer { state.waiting.removeAll() }
                return (batch, state.waiting)
            }
            for continuation in waiting { continuation.resume() }
            guard !batch.isEmpty else { return }
            await self.write(batch)
        }
    }

    private func write(_ batch: [Request]) async {
        let outcomes: [ChatStore.AppendOutcome]
        do {
            outcomes = try await self.store.append(batch.map(\.draft))
        } catch {
            // The batch rolled back whole: e.g. another process stored one of its clientMessageIds first, or a deadlock
            // between processes. Each message alone then gets the answer it would have had on its own.
            for request in batch {
                do {
                    let outcome = try await self.store.append(request.draft)
                    if case .created(let record) = outcome { await self.published(record) }
                    request.pending.complete(.success(outcome))
                } catch {
                    request.pending.complete(.failure(error))
                }
            }
            return
        }
        for outcome in outcomes {
            if case .created(let record) = outcome { await self.published(record) }
        }
        for (request, outcome) in zip(batch, outcomes) {
            request.pending.complete(.success(outcome))
        }
    }
}

/// A message queued in the writer: its outcome, once the batch holding it is committed.
final class PendingAppend: Sendable {
    private enum Slot {
        case waiting(CheckedContinuation<ChatStore.AppendOutcome, any Error>?)
        case done(Result<ChatStore.AppendOutcome, any Error>)
    }

    private let slot = Mutex(Slot.waiting(nil))

    /// Waits for the outcome.
    func outcome() async throws -> ChatStore.AppendOutcome {
        try await withCheckedThrowingContinuation { continuation in
            let result = self.slot.withLock { slot -> Result<ChatStore.AppendOutcome, any Error>? in
                if case .done(let result) = slot { return result }
                slot = .waiting(continuation)
                return nil
            }
            if let result { continuation.resume(with: result) }
        }
    }

    func complete(_ result: Result<ChatStore.AppendOutcome, any Error>) {
        let continuation = self.slot.withLock { slot -> CheckedContinuation<ChatStore.AppendOutcome, any Error>? in
            guard case .waiting(let continuation) = slot else { return nil }
            slot = .done(result)
            return continuation
        }
        continuation?.resume(with: result)
    }
}
