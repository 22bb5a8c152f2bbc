import Logging
import ParleyCore
import Synchronization

/// Marks messages read for whoever has their chat open (`joinChat`) when they are delivered, as the original app does.
///
/// The server owns this pointer: a client that has a chat open does not mark arriving messages read itself. Membership is
/// checked once, when the chat is opened; a delivery costs no query. The pointers to move are gathered and written by one
/// task, so a burst of messages into an open chat costs one write (and one `messagesSeen`) per viewer, not one per message.
final class ReadOnDelivery: Sendable {
    let service: ChatService
    let logger: Logger
    private let state = Mutex(State())
    private let queued = Wakeup()

    struct State {
        /// The chats open on each socket.
        var openOn: [String: (userID: String, chats: Set<String>)] = [:]
        /// For each chat, its viewers and on how many of their sockets it is open.
        var viewers: [String: [String: Int]] = [:]
        /// Read pointers to move: chat and user → the seq to move to.
        var pending: [Viewer: Int64] = [:]
    }

    struct Viewer: Hashable {
        var chatID: String
        var userID: String
    }

    init(service: ChatService, logger: Logger) {
        self.service = service
        self.logger = logger
    }

    /// Opens `chatID` on socket `socketID` of `userID`, who must be a member (checked by the caller).
    func open(_ chatID: String, socketID: String, userID: String) {
        self.state.withLock { state in
            guard state.openOn[socketID, default: (userID, [])].chats.insert(chatID).inserted else { return }
            state.viewers[chatID, default: [:]][userID, default: 0] += 1
        }
    }

    /// Closes `chatID` on socket `socketID`.
    func close(_ chatID: String, socketID: String) {
        self.state.withLock { state in
            guard let userID = state.openOn[socketID]?.userID, state.openOn[socketID]?.chats.remove(chatID) != nil else { return }
            Self.removeViewer(userID, of: chatID, in: &state)
        }
    }

    /// Closes every chat open on a socket that went away.
    func socketGone(_ socketID: String) {
        self.state.withLock { state in
            guard let open = state.openOn.removeValue(forKey: socketID) else { return }
            for chatID in open.chats { Self.removeViewer(open.userID, of: chatID, in: &state) }
        }
    }

    private static func removeViewer(_ userID: String, of chatID: String, in state: inout State) {
        let count = state.viewers[chatID]?[userID, default: 1] ?? 1
        state.viewers[chatID]?[userID] = count > 1 ? count - 1 : nil
        if state.viewers[chatID]?.isEmpty == true { state.viewers[chatID] = nil }
    }

    /// A message was delivered to the sockets here: its chat's viewers (other than its sender) have read it.
    func delivered(_ record: MessageRecord) {
        let anyone = self.state.withLock { state -> Bool in
            guard let viewers = state.viewers[record.chatID] else { return false }
            var anyone = false
            for userID in viewers.keys where userID != record.senderID {
                let viewer = Viewer(chatID: record.chatID, userID: userID)
                state.pending[viewer] = max(state.pending[viewer] ?? 0, record.seq)
                anyone = true
            }
            return anyone
        }
        if anyone { self.queued.ring() }
    }

    /// Writes the gathered read pointers until cancelled, off the fan-out loop so that writes never hold up delivery.
    func run() async {
        while !Task.isCancelled {
            let pending = self.state.withLock { state -> [Viewer: Int64] in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return state.pending
            }
            if pending.isEmpty {
                await self.queued.wait(timeout: .seconds(1))
                continue
            }
            for (viewer, seq) in pending {
                do {
                    try await self.service.markReadOnDelivery(chatID: viewer.chatID, userID: viewer.userID, seq: seq)
                } catch {
                    self.logger.warning("cannot mark an open chat read", metadata: ["chatId": .string(viewer.chatID), "error": "\(error)"])
                }
            }
        }
    }
}

extension ChatService {
    /// Moves a member's read pointer to a message delivered while they had its chat open, and tells the chat; the
    /// membership was checked when the chat was opened.
    func markReadOnDelivery(chatID: String, userID: String, seq: Int64) async throws {
        if let moved = try await self.store.markRead(chatID: chatID, userID: userID, seq: seq) {
            self.bus.publish(.messagesSeen(chatID: chatID, userID: userID, seq: moved))
        }
    }
}
