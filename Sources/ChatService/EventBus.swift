import Synchronization

/// Something that happened in a chat: the facts only. Whoever fans it out finds the members (``MembershipCache``), so the
/// same value travels in one process and, encoded, between chat instances.
package enum ChatEvent: Sendable, Equatable, Codable {
    /// A stored message (each instance signs its own file URLs).
    case newMessage(MessageRecord)
    /// A message edited, deleted, or with its reactions changed: its state after the change.
    case messageUpdated(MessageRecord)
    /// A member's read pointer moved (`markRead`): every member hears it.
    case messagesSeen(chatID: String, userID: String, seq: Int64)
    /// The pointers of a chat's viewers moved by read-on-delivery, written together: each viewer hears their own (for
    /// their other sockets), and `senders` (whose messages were read) hear them all at once.
    case readPointers(chatID: String, pointers: [ReadPointer], senders: [String])
    case typing(chatID: String, userID: String, isTyping: Bool)
    /// A chat was created or a group changed: its summary (it names the members, whom every instance's membership cache
    /// takes from it).
    case chatUpdated(ChatSummary)
    /// People removed from a group or who left it: their sockets hear `chatRemoved`, and nothing more of the chat.
    case chatRemoved(chatID: String, userIDs: [String])
    /// A direct chat in which one side now blocks the other (or no longer does): its typing is no longer relayed.
    case chatBlocked(chatID: String, blocked: Bool)
    /// A user's first socket anywhere connected (`online`), or their last one went. `contacts` when the publisher knows
    /// them: they stay in the process (not encoded), and every other instance reads them itself.
    case presence(userID: String, online: Bool, contacts: [String]? = nil)
    /// Changes `firstVersion...lastVersion` of a chat may not have been delivered (the bus was away): read them from the
    /// store. Local to the instance that noticed.
    case messagesMissed(chatID: String, firstVersion: Int64, lastVersion: Int64)

    // Short keys: the wire is a NOTIFY payload of at most 8000 bytes, so every byte of a packed batch counts.
    enum CodingKeys: String, CodingKey {
        case newMessage = "m"
        case messageUpdated = "e"
        case messagesSeen = "s"
        case readPointers = "d"
        case typing = "t"
        case chatUpdated = "c"
        case chatRemoved = "r"
        case chatBlocked = "b"
        case presence = "p"
        case messagesMissed = "x"
    }

    enum NewMessageCodingKeys: String, CodingKey {
        case _0 = "r"
    }
    enum MessageUpdatedCodingKeys: String, CodingKey {
        case _0 = "r"
    }
    enum MessagesSeenCodingKeys: String, CodingKey {
        case chatID = "c"
        case userID = "u"
        case seq = "q"
    }
    enum ReadPointersCodingKeys: String, CodingKey {
        case chatID = "c"
        case pointers = "p"
        case senders = "u"
    }
    enum TypingCodingKeys: String, CodingKey {
        case chatID = "c"
        case userID = "u"
        case isTyping = "on"
    }
    enum ChatUpdatedCodingKeys: String, CodingKey {
        case _0 = "s"
    }
    enum ChatRemovedCodingKeys: String, CodingKey {
        case chatID = "c"
        case userIDs = "u"
    }
    enum ChatBlockedCodingKeys: String, CodingKey {
        case chatID = "c"
        case blocked = "on"
    }
    enum PresenceCodingKeys: String, CodingKey {
        case userID = "u"
        case online = "on"
    }
    enum MessagesMissedCodingKeys: String, CodingKey {
        case chatID = "c"
        case firstVersion = "f"
        case lastVersion = "l"
    }

    /// Whether the event goes to other instances: a fill is decided by each instance for itself.
    var travels: Bool {
        if case .messagesMissed = self { return false }
        return true
    }
}

/// A member's read pointer: they have read up to `seq`.
package struct ReadPointer: Sendable, Hashable, Codable {
    package var userID: String
    package var seq: Int64

    package init(userID: String, seq: Int64) {
        self.userID = userID
        self.seq = seq
    }

    enum CodingKeys: String, CodingKey {
        case userID = "u"
        case seq = "q"
    }
}

/// Carries chat events to whatever fans them out to sockets: within one process, or between chat instances.
package protocol ChatEventBus: Sendable {
    /// Publishes `event` to every subscriber.
    func publish(_ event: ChatEvent)
    /// A stream of every event published from now on.
    func subscribe() -> AsyncStream<ChatEvent>
}

/// The bus of one process: events go straight to the subscribers' streams, in publish order.
package final class InProcessEventBus: ChatEventBus {
    private let subscribers = Mutex<[AsyncStream<ChatEvent>.Continuation]>([])

    /// A bus with no subscribers yet.
    package init() {}

    package func publish(_ event: ChatEvent) {
        for continuation in self.subscribers.withLock({ $0 }) {
            continuation.yield(event)
        }
    }

    package func subscribe() -> AsyncStream<ChatEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: ChatEvent.self, bufferingPolicy: .unbounded)
        self.subscribers.withLock { $0.append(continuation) }
        return stream
    }
}

/// Chat memberships in memory, one cache per process. The service remembers the chats it creates and changes; every
/// change of a group's members reaches every instance as `chatUpdated` (and `chatRemoved`), whose fan-out replaces the
/// chat's entry: a removed member stops hearing the chat on every instance once the bus has carried the change. The
/// fan-out and the realtime checks read through it; sends check membership in the database.
final class MembershipCache: Sendable {
    private let members = Mutex<[String: [String]]>([:])
    /// The direct chats known here in which one side blocks the other (read with the members, kept by `chatBlocked`).
    private let blocked = Mutex<Set<String>>([])
    let store: ChatStore

    init(store: ChatStore) {
        self.store = store
    }

    /// The members of `chatID`, from memory after the first look-up.
    func members(of chatID: String) async throws -> [String] {
        if let cached = self.members.withLock({ $0[chatID] }) { return cached }
        let (ids, blocked) = try await self.store.membership(of: chatID)
        if blocked { self.setBlocked(chatID, true) }
        if !ids.isEmpty { self.members.withLock { $0[chatID] = ids } }
        return ids
    }

    /// Whether `chatID` is a direct chat in which one side blocks the other, as far as this process knows (after
    /// ``members(of:)`` read it).
    func isBlocked(_ chatID: String) -> Bool {
        self.blocked.withLock { $0.contains(chatID) }
    }

    func setBlocked(_ chatID: String, _ blocked: Bool) {
        self.blocked.withLock { set in
            if blocked { set.insert(chatID) } else { set.remove(chatID) }
        }
    }

    /// Reads the members of `chatID` from the database again and remembers them.
    func refresh(_ chatID: String) async throws -> [String] {
        let (ids, blocked) = try await self.store.membership(of: chatID)
        self.setBlocked(chatID, blocked)
        self.members.withLock { cache in
            if ids.isEmpty { cache[chatID] = nil } else { cache[chatID] = ids }
        }
        return ids
    }

    /// Records the members of a chat just created or changed (or announced by another instance).
    func remember(_ chatID: String, members: [String]) {
        self.members.withLock { $0[chatID] = members }
    }

    /// The people who share at least one chat with `userID` and neither block the other: whose presence they see, and who
    /// see theirs (a block hides it both ways, so the blocked person cannot tell a block from someone offline).
    ///
    /// The members of chats known here come from memory; one read finds the person's chats, the members of the others and
    /// the blocks. (A reconnect storm of a 1,000-member group read its 999 members from the database for each of the
    /// 1,000 connects: a million rows, most of the server's work during the storm.) The others are not remembered: only
    /// chats that carry events are kept, so connecting does not fill memory with every chat of everyone who connects.
    func contacts(of userID: String) async throws -> [String] {
        let sources = try await self.store.contactSources(of: userID) { chatID in self.members.withLock { $0[chatID] } }
        var seen = Set<String>()
        var contacts: [String] = []
        for members in sources.members {
            for member in members where member != userID && !sources.blocked.contains(member) && seen.insert(member).inserted {
                contacts.append(member)
            }
        }
        return contacts
    }

    /// Forgets `userIDs` as members of `chatID`, if the chat is known here.
    func forget(_ userIDs: [String], in chatID: String) {
        self.members.withLock { cache in
            guard let known = cache[chatID] else { return }
            cache[chatID] = known.filter { !userIDs.contains($0) }
        }
    }
}
