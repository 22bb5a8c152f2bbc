import Synchronization

/// Group commit: concurrent sends are stored by one writer, many per transaction with multi-row statements,
/// published in seq order, and answered together once committed.
///
/// A statement costs far more than the row it writes (an async hop to the driver, a round trip, a commit that may fsync),
/// so rows per statement, not rows per second of raw storage, decide how many messages per second Parley takes.
final class MessageWriter: Sendable {
    private struct Request: Sendable {
        var draft: ChatStore.MessageDraft
        var continuation: CheckedContinuation<ChatStore.AppendOutcome, any Error>
    }

    private struct State {
        var pending: [Request] = []
        var writing = false
    }

    /// The most messages one transaction takes; the rest wait for the next, so no batch's statements grow without bound.
    static let maxBatch = 256

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
        try await withCheckedThrowingContinuation { continuation in
            let startWriter = self.state.withLock { state in
                state.pending.append(Request(draft: draft, continuation: continuation))
                guard !state.writing else { return false }
                state.writing = true
                return true
            }
            // While a batch is being written the next one gathers: the busier the server, the bigger the batches.
            if startWriter { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = self.state.withLock { state -> [Request] in
                guard !state.pending.isEmpty else {
                    state.writing = false
                    return []
                }
                let batch = Array(state.pending.prefix(Self.maxBatch))
                state.pending.removeFirst(batch.count)
                return batch
            }
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
                    request.continuation.resume(returning: outcome)
                } catch {
                    request.continuation.resume(throwing: error)
                }
            }
            return
        }
        for outcome in outcomes {
            if case .created(let record) = outcome { await self.published(record) }
        }
        for (request, outcome) in zip(batch, outcomes) {
            request.continuation.resume(returning: outcome)
        }
    }
}
