import Logging
import ParleyCore
import SocketIOServer
import Synchronization

/// Where the fan-out queues events: the sockets of a set of users (the Socket.IO server; a recorder in tests).
protocol EventRecipients: Sendable {
    /// Queues `event` for every socket of each of `users`; never blocks.
    func emit(_ event: EncodedEvent, toUsers users: [String])
    /// Queues `event` for the sockets of `user` but those in `skipping`; never blocks.
    func emit(_ event: EncodedEvent, toUser user: String, skipping: Set<String>)
}

extension SocketIOServer: EventRecipients {
    func emit(_ event: EncodedEvent, toUsers users: [String]) {
        self.emit(event, toUsers: users[...])
    }

    func emit(_ event: EncodedEvent, toUser user: String, skipping: Set<String>) {
        for socket in self.sockets(ofUser: user) where !skipping.contains(socket.id) {
            socket.emit(event)
        }
    }
}

/// Fans bus events out to the sockets of this process: finds each event's members once (in the process's membership
/// cache), puts messages through the sequencer (each once, in seq order), encodes each event once for all its recipients,
/// and tells read-on-delivery what was delivered.
final class ChatFanout: Sendable {
    let service: ChatService
    /// Puts each chat's messages in seq order, once, whatever order the bus brings them in.
    let sequencer: MessageSequencer
    let presence: PresenceTracker
    let reads: ReadOnDelivery
    /// Presence changes, gathered for a short window: one packet per socket per window, not one per change.
    let presenceBatch: PresenceBatch
    let logger: Logger
    private let recipients = Mutex<(any EventRecipients)?>(nil)

    init(
        service: ChatService,
        sequencer: MessageSequencer,
        presence: PresenceTracker,
        reads: ReadOnDelivery,
        presenceBatch: PresenceBatch = PresenceBatch(),
        logger: Logger
    ) {
        self.service = service
        self.sequencer = sequencer
        self.presence = presence
        self.reads = reads
        self.presenceBatch = presenceBatch
        self.logger = logger
    }

    /// Sets where events go (the server is made after its handler, so it is set after the fan-out is).
    func attach(to recipients: any EventRecipients) {
        self.recipients.withLock { $0 = recipients }
    }

    /// Delivers `events` until the stream ends or the task is cancelled.
    func run(_ events: AsyncStream<ChatEvent>) async {
        for await event in events {
            await self.deliver(event)
        }
    }

    /// Sends the gathered presence changes, a window at a time, until cancelled.
    func runPresence() async {
        await self.presenceBatch.run { event, users in
            self.recipients.withLock { $0 }?.emit(event, toUsers: users)
        }
    }

    func deliver(_ event: ChatEvent) async {
        guard let recipients = self.recipients.withLock({ $0 }) else { return }
        switch event {
        case .newMessage(let record), .messageUpdated(let record):
            // An event that cannot be addressed now is made up for by the next one's fill, or by `/changes`.
            guard var members = await self.members(of: record.chatID) else { return }
            let isNew = if case .newMessage = event { true } else { false }
            for ready in await self.sequencer.admit(record, isNew: isNew) {
                await self.emit(ready, to: &members, recipients)
            }
        case .messagesMissed(let chatID, let first, let last):
            guard var members = await self.members(of: chatID) else { return }
            for ready in await self.sequencer.missed(chatID: chatID, from: first, through: last) {
                await self.emit(ready, to: &members, recipients)
            }
        case .messagesSeen(let chatID, let userID, let seq):
            guard let members = await self.members(of: chatID) else { return }
            let payload = #"{"chatId":"# + JSONText.quote(chatID) + #","userId":"# + JSONText.quote(userID) + #","seq":\#(seq)}"#
            recipients.emit(EncodedEvent(name: "messagesSeen", encodedArguments: [payload]), toUsers: members)
        case .readPointers(let chatID, let pointers, let senders):
            guard let members = await self.members(of: chatID).map(Set.init) else { return }
            let senders = senders.filter(members.contains)
            let quotedChat = JSONText.quote(chatID)
            // Each viewer's own pointer to their other sockets (their other tabs clear the chat's unread count): not to the
            // sockets here with the chat open, which read it.
            for pointer in pointers where members.contains(pointer.userID) {
                let payload = #"{"chatId":"# + quotedChat + #","userId":"# + JSONText.quote(pointer.userID) + #","seq":\#(pointer.seq)}"#
                let event = EncodedEvent(name: "messagesSeen", encodedArguments: [payload])
                recipients.emit(event, toUser: pointer.userID, skipping: self.reads.socketsViewing(chatID, userID: pointer.userID))
                if pointers.count == 1 { recipients.emit(event, toUsers: senders.filter { $0 != pointer.userID }) }
            }
            // The senders of what was read: every moved pointer at once.
            guard pointers.count > 1, !senders.isEmpty else { return }
            let entries = pointers.map { #"{"userId":"# + JSONText.quote($0.userID) + #","lastReadSeq":\#($0.seq)}"# }
            let payload = #"{"chatId":"# + quotedChat + #","readState":["# + entries.joined(separator: ",") + "]}"
            recipients.emit(EncodedEvent(name: "readState", encodedArguments: [payload]), toUsers: senders)
        case .typing(let chatID, let userID, let isTyping):
            guard let members = await self.members(of: chatID) else { return }
            let payload = #"{"chatId":"# + JSONText.quote(chatID) + #","userId":"# + JSONText.quote(userID) + "}"
            let name = isTyping ? "userTyping" : "userStoppedTyping"
            recipients.emit(EncodedEvent(name: name, encodedArguments: [payload]), toUsers: members.filter { $0 != userID })
        case .chatUpdated(let summary):
            let members = summary.members.map(\.id)
            self.service.membership.remember(summary.id, members: members)
            recipients.emit(EncodedEvent(name: "chatUpdated", encodedArguments: [ParleyJSON.text(summary)]), toUsers: members)
            // New contacts of a direct chat learn at once whether the other is online. (For groups that would be a packet
            // per pair of members; their members learn presence when they next connect.)
            guard members.count == 2 else { return }
            let online = await self.presence.online(among: members)
            for member in members where online.contains(member) {
                recipients.emit(Self.presenceEvent(member, online: true), toUsers: members.filter { $0 != member })
            }
        case .chatBlocked(let chatID, let blocked):
            self.service.membership.setBlocked(chatID, blocked)
            // A block hides presence both ways (see ``MembershipCache/contacts(of:)``): each of the two now sees the other
            // offline, and when it is lifted, online again if they are.
            guard let members = await self.members(of: chatID), members.count == 2 else { return }
            let online = blocked ? [] : await self.presence.online(among: members)
            for member in members where blocked || online.contains(member) {
                recipients.emit(Self.presenceEvent(member, online: !blocked), toUsers: members.filter { $0 != member })
            }
        case .chatRemoved(let chatID, let userIDs):
            self.service.membership.forget(userIDs, in: chatID)
            recipients.emit(EncodedEvent(name: "chatRemoved", encodedArguments: [#"{"chatId":"# + JSONText.quote(chatID) + "}"]), toUsers: userIDs)
        case .presence(let userID, let online, let known):
            let contacts: [String]
            if let known { contacts = known } else { contacts = (try? await self.service.membership.contacts(of: userID)) ?? [] }
            self.presenceBatch.add(userID, online: online, to: contacts)
        }
    }

    static func presenceEvent(_ userID: String, online: Bool) -> EncodedEvent {
        EncodedEvent(name: online ? "userOnline" : "userOffline", encodedArguments: [#"{"userId":"# + JSONText.quote(userID) + "}"])
    }

    func members(of chatID: String) async -> [String]? {
        do {
            return try await self.service.membership.members(of: chatID)
        } catch {
            self.logger.warning("cannot find a chat's members", metadata: ["chatId": .string(chatID), "error": "\(error)"])
            return nil
        }
    }

    /// Emits `delivery` to `members`. A new system message may have changed the members, and the change's `chatUpdated`
    /// can come after it (a fill found it in the database first, or the bus carried the two apart): its members are read
    /// again from the database, so that a removed member never hears the removal nor anything after it.
    func emit(_ delivery: MessageSequencer.Delivery, to members: inout [String], _ recipients: any EventRecipients) async {
        if delivery.isNew, delivery.record.kind == "system" {
            do {
                members = try await self.service.membership.refresh(delivery.record.chatID)
            } catch {
                self.logger.warning(
                    "cannot read a changed chat's members",
                    metadata: ["chatId": .string(delivery.record.chatID), "error": "\(error)"]
                )
            }
        }
        let record = delivery.record
        let name = delivery.isNew ? "newMessage" : "messageUpdated"
        let event = EncodedEvent(name: name, encodedArguments: [record.message(signer: self.service.signer).jsonText])
        // Under a block the blocker has a view of their own: what the blocked person writes reaches no socket of theirs,
        // a change that person made of what they had seen leaves it as it was, and a reply quoting either shows them
        // what they saw.
        let ownView = [record.hiddenFrom, record.replyHiddenFrom, record.kept?.viewer, record.replyKept?.viewer].compactMap { $0 }
        if ownView.isEmpty {
            recipients.emit(event, toUsers: members)
        } else {
            recipients.emit(event, toUsers: members.filter { !ownView.contains($0) })
            for reader in Set(ownView) where reader != record.hiddenFrom && members.contains(reader) && (delivery.isNew || record.changedFor(reader))
            {
                let seen = record.seen(by: reader).message(signer: self.service.signer)
                recipients.emit(EncodedEvent(name: name, encodedArguments: [seen.jsonText]), toUsers: [reader])
            }
        }
        ChatMetrics.shared.queued(delivery)
        if delivery.isNew { self.reads.delivered(delivery.record) }
    }
}
