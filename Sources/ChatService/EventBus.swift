import Synchronization

/// Something that happened in a chat, addressed to its members.
public enum ChatEvent: Sendable {
    case newMessage(MessageRecordEnvelope, members: [String])
    case messagesSeen(chatID: String, userID: String, seq: Int64, members: [String])
    case typing(chatID: String, userID: String, isTyping: Bool, members: [String])
    /// A chat was created: its summary as every member sees it at creation.
    case chatUpdated(ChatSummary, members: [String])
    /// A user's first socket anywhere connected (`online`), or their last one went. `contacts` when the publisher knows them
    /// (they are not sent between instances: each reads them itself).
    case presence(userID: String, online: Bool, contacts: [String]? = nil)
    /// Messages `firstSeq...lastSeq` of a chat may not have been delivered (the bus was away): read them from the store.
    case messagesMissed(chatID: String, firstSeq: Int64, lastSeq: Int64, members: [String])
}

/// A message as published on the bus (the stored record; each instance signs its own URLs).
public struct MessageRecordEnvelope: Sendable {
    let record: MessageRecord
}

/// Carries chat events to whatever fans them out to sockets; in-process now, between processes later.
public protocol ChatEventBus: Sendable {
    /// Publishes `event` to every subscriber.
    func publish(_ event: ChatEvent)
    /// A stream of every event published from now on.
    func subscribe() -> AsyncStream<ChatEvent>
}

/// The bus of one process: events go straight to the subscribers' streams, in publish order.
public final class InProcessEventBus: ChatEventBus {
    private let subscribers = Mutex<[AsyncStream<ChatEvent>.Continuation]>([])

    public init() {}

    public func publish(_ event: ChatEvent) {
        for continuation in self.subscribers.withLock({ $0 }) {
            continuation.yield(event)
        }
    }

    public func subscribe() -> AsyncStream<ChatEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: ChatEvent.self, bufferingPolicy: .unbounded)
        self.subscribers.withLock { $0.append(continuation) }
        return stream
    }
}

/// Chat memberships in memory: they never change after a chat is created, so once read they stay true.
final class MembershipCache: Sendable {
    private let members = Mutex<[String: [String]]>([:])
    let store: ChatStore

    init(store: ChatStore) {
        self.store = store
    }

    /// The members of `chatID`, from memory after the first look-up.
    func members(of chatID: String) async throws -> [String] {
        if let cached = self.members.withLock({ $0[chatID] }) { return cached }
        let ids = try await self.store.memberIDs(of: chatID)
        if !ids.isEmpty { self.members.withLock { $0[chatID] = ids } }
        return ids
    }

    func remember(_ chatID: String, members: [String]) {
        self.members.withLock { $0[chatID] = members }
    }
}
