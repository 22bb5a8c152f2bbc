import Logging
import ParleyCore
import Synchronization

/// Decides which message changes to deliver, so that every socket gets each change of a chat once and in version order,
/// whatever order the bus brings them in (another instance's notification may arrive after a later change made here).
///
/// It remembers the last version delivered per chat. A version at or below it is a duplicate. A version beyond the next
/// one means earlier changes are still on their way: they are read from the store and delivered first. They are there: a
/// chat's versions are taken under its row lock (the single writer on SQLite), so a later version commits after an earlier
/// one. A message changed again since shows its latest state once, at its latest version.
final class MessageSequencer: Sendable {
    /// A message to deliver: `isNew` for `newMessage`, else `messageUpdated`.
    struct Delivery: Sendable, Equatable {
        var record: MessageRecord
        var isNew: Bool
    }

    /// What has been delivered of a chat: its last version, and the highest seq among the messages delivered as new.
    private struct Delivered {
        var version: Int64
        var seq: Int64?
    }

    let store: ChatStore
    let logger: Logger
    private let delivered = Mutex<[String: Delivered]>([:])
    /// Beyond this many chats the delivered versions are forgotten, so memory stays bounded (a forgotten chat starts afresh).
    static let chatLimit = 200_000
    /// How far back "just before" reaches when a chat's first change is seen (see ``admit(_:isNew:)``).
    static let inFlightWindow: Int64 = 2_000

    /// When this process began delivering: changes older than that were never announced to it, and are history for the
    /// clients (they read it with `/changes`), so the fills below never bring them live.
    let startedAt: Int64

    init(store: ChatStore, logger: Logger, startedAt: Int64 = Timestamp.millis()) {
        self.store = store
        self.logger = logger
        self.startedAt = startedAt
    }

    /// The changes to deliver now that `record` arrived (new, or changed), in version order: none if it was delivered.
    func admit(_ record: MessageRecord, isNew: Bool) async -> [Delivery] {
        let last = self.delivered.withLock { $0[record.chatID]?.version }
        if let last, record.version <= last { return [] }
        var ready: [MessageRecord] = []
        if let last, record.version > last + 1 {
            ready = await self.read(chatID: record.chatID, after: last, through: record.version - 1)
        } else if last == nil, record.version > 1 {
            // The first change of this chat this process sees: ones made just before it may still be on their way from
            // another instance, and would count as duplicates once this one is delivered. They go first.
            ready = await self.read(chatID: record.chatID, after: max(0, record.version - 51), through: record.version - 1).filter {
                $0.changedAt >= max(record.changedAt - Self.inFlightWindow, self.startedAt)
            }
        }
        return self.claim(ready, then: Delivery(record: record, isNew: isNew))
    }

    /// The stored changes `first...last` of a chat not delivered yet (the bus was away), in version order.
    func missed(chatID: String, from first: Int64, through last: Int64) async -> [Delivery] {
        let known = self.delivered.withLock { $0[chatID]?.version }
        let after = max(first - 1, known ?? (first - 1))
        guard after < last else { return [] }
        var records = await self.read(chatID: chatID, after: after, through: last)
        // A chat this process never delivered from: only what changed since it began counts as missed.
        if known == nil { records = records.filter { $0.changedAt >= self.startedAt } }
        return self.claim(records, then: nil)
    }

    /// Keeps the changes that are news, in order, and moves the chat's last delivered version past them. A change read from
    /// the store is new when its seq is beyond every seq delivered (or, for a chat not seen yet, when it never changed).
    private func claim(_ records: [MessageRecord], then live: Delivery?) -> [Delivery] {
        let candidates = records.map { Delivery(record: $0, isNew: false) } + (live.map { [$0] } ?? [])
        let fromStore = records.count
        return self.delivered.withLock { delivered in
            if delivered.count >= Self.chatLimit { delivered.removeAll() }
            var result: [Delivery] = []
            for (index, var candidate) in candidates.enumerated() {
                let record = candidate.record
                let known = delivered[record.chatID]
                if let known, record.version <= known.version { continue }
                if index < fromStore {
                    if let seq = known?.seq {
                        candidate.isNew = record.seq > seq
                    } else {
                        candidate.isNew = record.changedAt == record.createdAt
                    }
                }
                let seq = candidate.isNew ? max(known?.seq ?? 0, record.seq) : known?.seq
                delivered[record.chatID] = Delivered(version: record.version, seq: seq)
                result.append(candidate)
            }
            return result
        }
    }

    private func read(chatID: String, after: Int64, through last: Int64) async -> [MessageRecord] {
        var records: [MessageRecord] = []
        var cursor = after
        do {
            while cursor < last {
                let page = try await self.store.changes(in: chatID, after: cursor, through: last, limit: 200)
                records += page.records
                guard let next = page.records.last?.version, page.hasMore else { break }
                cursor = next
            }
        } catch {
            self.logger.error("cannot read message changes to deliver", metadata: ["chatId": .string(chatID), "error": "\(error)"])
        }
        return records
    }
}
