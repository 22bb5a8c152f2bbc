import Logging
import ParleyCore
import Synchronization

/// Marks messages read for whoever has their chat open (`joinChat`) when they are delivered, as the original app does.
///
/// The server owns this pointer: a client that has a chat open does not mark arriving messages read itself. Membership is
/// checked once, when the chat is opened; a delivery costs no query. The pointers to move are gathered for ``interval``
/// and written by one task in one transaction, whatever the number of viewers and messages: a busy group with a
/// thousand viewers costs one write per interval, not one per viewer or per message. Each moved pointer goes to its
/// viewer's own sockets, and the senders of the messages read hear the chat's moved pointers in one event
/// (`ChatEvent.readPointers`), not one per viewer.
final class ReadOnDelivery: Sendable {
    let service: ChatService
    let logger: Logger
    /// How long pointers are gathered before they are written (after the first delivery that moves one).
    let interval: Duration
    private let state = Mutex(State())
    private let queued = Wakeup()

    struct State {
        /// The chats open on each socket.
        var openOn: [String: (userID: String, chats: Set<String>)] = [:]
        /// For each chat, its viewers and the sockets of theirs on which it is open.
        var viewers: [String: [String: Set<String>]] = [:]
        /// Read pointers to move: chat and user → the seq to move to.
        var pending: [Viewer: Int64] = [:]
        /// For each chat with pointers to move, who sent the messages read.
        var senders: [String: Set<String>] = [:]
    }

    struct Viewer: Hashable {
        var chatID: String
        var userID: String
    }

    init(service: ChatService, logger: Logger, interval: Duration = .milliseconds(250)) {
        self.service = service
        self.logger = logger
        self.interval = interval
    }

    /// Opens `chatID` on socket `socketID` of `userID`, who must be a member (checked by the caller).
    func open(_ chatID: String, socketID: String, userID: String) {
        self.state.withLock { state in
            guard state.openOn[socketID, default: (userID, [])].chats.insert(chatID).inserted else { return }
            state.viewers[chatID, default: [:]][userID, default: []].insert(socketID)
        }
    }

    /// Closes `chatID` on socket `socketID`.
    func close(_ chatID: String, socketID: String) {
        self.state.withLock { state in
            guard let userID = state.openOn[socketID]?.userID, state.openOn[socketID]?.chats.remove(chatID) != nil else { return }
            Self.removeViewer(userID, socketID: socketID, of: chatID, in: &state)
        }
    }

    /// Closes every chat open on a socket that went away.
    func socketGone(_ socketID: String) {
        self.state.withLock { state in
            guard let open = state.openOn.removeValue(forKey: socketID) else { return }
            for chatID in open.chats { Self.removeViewer(open.userID, socketID: socketID, of: chatID, in: &state) }
        }
    }

    private static func removeViewer(_ userID: String, socketID: String, of chatID: String, in state: inout State) {
        state.viewers[chatID]?[userID]?.remove(socketID)
        if state.viewers[chatID]?[userID]?.isEmpty == true { state.viewers[chatID]?[userID] = nil }
        if state.viewers[chatID]?.isEmpty == true { state.viewers[chatID] = nil }
    }

    /// The sockets here on which `userID` has `chatID` open: they read on delivery, so their own pointer's
    /// `messagesSeen` is no news to them.
    func socketsViewing(_ chatID: String, userID: String) -> Set<String> {
        self.state.withLock { $0.viewers[chatID]?[userID] ?? [] }
    }

    /// A message was delivered to the sockets here: its chat's viewers (other than its sender) have read it.
    func delivered(_ record: MessageRecord) {
        let anyone = self.state.withLock { state -> Bool in
            guard let viewers = state.viewers[record.chatID] else { return false }
            var anyone = false
            // Not read by the blocker it is kept from: their pointer would tell the writer it was.
            for userID in viewers.keys where userID != record.senderID && userID != record.hiddenFrom {
                let viewer = Viewer(chatID: record.chatID, userID: userID)
                state.pending[viewer] = max(state.pending[viewer] ?? 0, record.seq)
                anyone = true
            }
            if anyone { state.senders[record.chatID, default: []].insert(record.senderID) }
            return anyone
        }
        if anyone { self.queued.ring() }
    }

    /// Writes the gathered read pointers until cancelled, off the fan-out loop so that writes never hold up delivery.
    func run() async {
        while !Task.isCancelled {
            if self.state.withLock({ $0.pending.isEmpty }) {
                await self.queued.wait(timeout: .seconds(1))
                continue
            }
            // Let a burst gather: one write for all of it.
            try? await Task.sleep(for: self.interval)
            let (pending, senders) = self.state.withLock { state in
                defer {
                    state.pending.removeAll(keepingCapacity: true)
                    state.senders.removeAll(keepingCapacity: true)
                }
                return (state.pending, state.senders)
            }
            do {
                try await self.service.markReadOnDelivery(
                    pending.map { ($0.key.chatID, ReadPointer(userID: $0.key.userID, seq: $0.value)) },
                    senders: senders
                )
            } catch {
                self.logger.warning("cannot mark open chats read", metadata: ["pointers": "\(pending.count)", "error": "\(error)"])
            }
        }
    }
}

extension ChatService {
    /// Moves the read pointers of members who had a chat open when its messages were delivered (membership was checked
    /// when the chat was opened), in one write, and tells each chat's viewers and the senders of what they read.
    func markReadOnDelivery(_ pointers: [(chatID: String, pointer: ReadPointer)], senders: [String: Set<String>]) async throws {
        let moved = try await self.store.markRead(pointers)
        for (chatID, pointers) in Dictionary(grouping: moved, by: \.chatID) {
            let readers = pointers.map(\.pointer).sorted { $0.userID < $1.userID }
            self.bus.publish(.readPointers(chatID: chatID, pointers: readers, senders: (senders[chatID] ?? []).sorted()))
        }
    }
}
