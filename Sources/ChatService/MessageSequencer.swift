import Logging
import ParleyCore
import Synchronization

/// Decides which messages to deliver, so that every socket gets each message of a chat once and in seq order, whatever
/// order the bus brings them in (another instance's notification may arrive after a later message sent here).
///
/// It remembers the last seq delivered per chat. A seq at or below it is a duplicate. A seq beyond the next one means
/// earlier messages are still on their way: they are read from the store and delivered first. They are there: a chat's
/// seqs are taken under its row lock (the single writer on SQLite), so a later seq commits after an earlier one.
final class MessageSequencer: Sendable {
    let store: ChatStore
    let logger: Logger
    private let delivered = Mutex<[String: Int64]>([:])
    /// Beyond this many chats the delivered seqs are forgotten, so memory stays bounded (a forgotten chat starts afresh).
    static let chatLimit = 200_000
    /// How far back "just before" reaches when a chat's first message is seen (see ``admit(_:)``).
    static let inFlightWindow: Int64 = 2_000

    /// When this process began delivering: messages older than that were never announced to it, and are history for
    /// the clients (they read it with `after=seq`), so the fills below never bring them live.
    let startedAt: Int64

    init(store: ChatStore, logger: Logger, startedAt: Int64 = Timestamp.millis()) {
        self.store = store
        self.logger = logger
        self.startedAt = startedAt
    }

    /// The messages to deliver now that `record` arrived, in seq order: none if it was delivered already.
    func admit(_ record: MessageRecord) async -> [MessageRecord] {
        let last = self.delivered.withLock { $0[record.chatID] }
        if let last, record.seq <= last { return [] }
        var ready: [MessageRecord] = []
        if let last, record.seq > last + 1 {
            ready = await self.read(chatID: record.chatID, after: last, through: record.seq - 1)
        } else if last == nil, record.seq > 1 {
            // The first message of this chat this process sees: ones sent just before it may still be on their way from
            // another instance, and would count as duplicates once this one is delivered. They go first.
            ready = await self.read(chatID: record.chatID, after: max(0, record.seq - 51), through: record.seq - 1).filter {
                $0.createdAt >= max(record.createdAt - Self.inFlightWindow, self.startedAt)
            }
        }
        return self.claim(ready + [record])
    }

    /// The stored messages `first...last` of a chat not delivered yet (the bus was away), in seq order.
    func missed(chatID: String, from first: Int64, through last: Int64) async -> [MessageRecord] {
        let known = self.delivered.withLock { $0[chatID] }
        let after = max(first - 1, known ?? (first - 1))
        guard after < last else { return [] }
        var records = await self.read(chatID: chatID, after: after, through: last)
        // A chat this process never delivered from: only what was sent since it began counts as missed.
        if known == nil { records = records.filter { $0.createdAt >= self.startedAt } }
        return self.claim(records)
    }

    /// Keeps the records that are news, in order, and moves the chat's last delivered seq past them.
    private func claim(_ records: [MessageRecord]) -> [MessageRecord] {
        self.delivered.withLock { delivered in
            if delivered.count >= Self.chatLimit { delivered.removeAll() }
            return records.filter { record in
                if let last = delivered[record.chatID], record.seq <= last { return false }
                delivered[record.chatID] = record.seq
                return true
            }
        }
    }

    private func read(chatID: String, after: Int64, through last: Int64) async -> [MessageRecord] {
        var records: [MessageRecord] = []
        var cursor = after
        do {
            while cursor < last {
                let page = try await self.store.messages(in: chatID, before: last + 1, after: cursor, limit: 200)
                records += page.records
                guard let next = page.records.last?.seq, page.hasMore else { break }
                cursor = next
            }
        } catch {
            self.logger.error("cannot read messages to deliver", metadata: ["chatId": .string(chatID), "error": "\(error)"])
        }
        return records
    }
}
