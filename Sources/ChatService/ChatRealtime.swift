import Foundation
import Logging
import ParleyCore
import ServiceLifecycle
import SocketIOProtocol
import SocketIOServer
import Synchronization

/// The realtime side of the chat service: authenticates sockets, turns client events into chat operations,
/// and fans bus events out to every socket of every member, encoding each event once.
public final class ChatRealtime: SocketIOHandler, Service {
    let service: ChatService
    let verifier: any AccessTokenVerifying
    let logger: Logger
    /// Who is online across instances.
    let presenceRegistry: any PresenceRegistry
    /// How long a user's last socket may be gone before contacts hear `userOffline` (a reload is not going offline).
    let offlineGrace: Duration
    /// How long `typing` lasts without a renewal.
    let typingLifetime: Duration

    private let server = Mutex<SocketIOServer?>(nil)
    private let presence = Mutex(Presence())
    private let openChats = Mutex<[String: Set<String>]>([:])
    private let typingTimers = Mutex<[String: Task<Void, Never>]>([:])
    /// Puts each chat's messages in seq order, once, whatever order the bus brings them in.
    let sequencer: MessageSequencer

    struct Presence {
        var sockets: [String: Int] = [:]
        var pendingOffline: [String: Task<Void, Never>] = [:]
    }

    /// Creates the handler; attach it to a server with ``attach(to:)``.
    public init(service: ChatService, verifier: any AccessTokenVerifying, logger: Logger, presence: any PresenceRegistry = LocalPresence(),
                offlineGrace: Duration = .seconds(2), typingLifetime: Duration = .seconds(5)) {
        self.service = service
        self.verifier = verifier
        self.logger = logger
        self.presenceRegistry = presence
        self.sequencer = MessageSequencer(store: service.store, logger: logger)
        self.offlineGrace = offlineGrace
        self.typingLifetime = typingLifetime
    }

    /// Tells the handler which server carries its events (they are made for each other, so one is set after the other).
    public func attach(to server: SocketIOServer) {
        self.server.withLock { $0 = server }
    }

    var socketServer: SocketIOServer? { self.server.withLock { $0 } }

    // MARK: Fan-out

    /// Delivers bus events until shutdown, and keeps presence alive where it is shared.
    public func run() async throws {
        let events = self.service.bus.subscribe()
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                if let interval = self.presenceRegistry.maintenanceInterval {
                    group.addTask { await self.maintainPresence(every: interval) }
                }
                group.addTask {
                    for await event in events {
                        await self.deliver(event)
                    }
                }
            }
        }
    }

    func deliver(_ event: ChatEvent) async {
        guard let server = self.socketServer else { return }
        switch event {
        case .newMessage(let envelope, let members):
            await self.deliverInOrder(envelope.record, members: members, server: server)
        case .messagesMissed(let chatID, let firstSeq, let lastSeq, let members):
            await self.fill(chatID: chatID, from: firstSeq, through: lastSeq, members: members, server: server)
        case .messagesSeen(let chatID, let userID, let seq, let members):
            let payload = #"{"chatId":"# + JSONText.quote(chatID) + #","userId":"# + JSONText.quote(userID) + #","seq":\#(seq)}"#
            server.emit(EncodedEvent(name: "messagesSeen", encodedArguments: [payload]), toUsers: members)
        case .typing(let chatID, let userID, let isTyping, let members):
            let payload = #"{"chatId":"# + JSONText.quote(chatID) + #","userId":"# + JSONText.quote(userID) + "}"
            server.emit(EncodedEvent(name: isTyping ? "userTyping" : "userStoppedTyping", encodedArguments: [payload]), toUsers: members.filter { $0 != userID })
        case .chatUpdated(let summary, let members):
            server.emit(EncodedEvent(name: "chatUpdated", encodedArguments: [ParleyJSON.text(summary)]), toUsers: members)
            // New contacts of a direct chat learn at once whether the other is online. (For groups that would be a packet
            // per pair of members; their members learn presence when they next connect.)
            guard members.count == 2 else { return }
            let online = (try? await self.presenceRegistry.online(among: members)) ?? []
            for member in members where online.contains(member) {
                server.emit(Self.presenceEvent(member, online: true), toUsers: members.filter { $0 != member })
            }
        case .presence(let userID, let online, let known):
            let contacts: [String]
            if let known { contacts = known } else { contacts = (try? await self.service.store.contacts(of: userID)) ?? [] }
            server.emit(Self.presenceEvent(userID, online: online), toUsers: contacts)
        }
    }

    static func presenceEvent(_ userID: String, online: Bool) -> EncodedEvent {
        EncodedEvent(name: online ? "userOnline" : "userOffline", encodedArguments: [#"{"userId":"# + JSONText.quote(userID) + "}"])
    }

    /// Delivers `record` and whatever must come before it, each message once and in seq order.
    func deliverInOrder(_ record: MessageRecord, members: [String], server: SocketIOServer) async {
        for ready in await self.sequencer.admit(record) {
            self.emit(ready, members: members, server: server)
        }
    }

    /// Delivers the stored messages `first...last` of a chat that were not delivered yet.
    func fill(chatID: String, from first: Int64, through last: Int64, members: [String], server: SocketIOServer) async {
        for ready in await self.sequencer.missed(chatID: chatID, from: first, through: last) {
            self.emit(ready, members: members, server: server)
        }
    }

    func emit(_ record: MessageRecord, members: [String], server: SocketIOServer) {
        let message = record.message(signer: self.service.signer)
        server.emit(EncodedEvent(name: "newMessage", encodedArguments: [ParleyJSON.text(message)]), toUsers: members)
        // Off the fan-out loop: database writes must not hold up delivery of the next events.
        Task { await self.markReadWhereOpen(record, members: members) }
    }

    /// Members whose socket has the chat open have read the new message (as the original app does).
    func markReadWhereOpen(_ record: MessageRecord, members: [String]) async {
        guard let server = self.socketServer else { return }
        let open = self.openChats.withLock { chats in
            members.filter { member in
                member != record.senderID && server.sockets(ofUser: member).contains { chats[$0.id]?.contains(record.chatID) == true }
            }
        }
        for member in open {
            do {
                try await self.service.markRead(chatID: record.chatID, userID: member, seq: record.seq)
            } catch {
                self.logger.warning("cannot mark an open chat read", metadata: ["chatId": .string(record.chatID), "error": "\(error)"])
            }
        }
    }

    /// Renews this instance's presence entries and announces what changed elsewhere (instances that died, entries swept away).
    func maintainPresence(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { return }
            do {
                let changes = try await self.presenceRegistry.maintain(present: self.presentUsers)
                for userID in changes.online { self.service.bus.publish(.presence(userID: userID, online: true)) }
                for userID in changes.offline { self.service.bus.publish(.presence(userID: userID, online: false)) }
            } catch {
                self.logger.warning("cannot renew presence", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: Socket.IO handler

    public func authenticate(auth: JSONValue?, handshake: SocketIOHandshake) async -> String? {
        var token = auth?["token"]?.stringValue
        if token == nil, let header = handshake.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            token = String(header.dropFirst(7))
        }
        if token == nil { token = handshake.query["token"] }
        guard let token else { return nil }
        return try? await self.verifier.userID(fromToken: token)
    }

    public func connected(_ socket: SocketIOSocket) async {
        let arrived = self.presence.withLock { presence -> Bool in
            let count = presence.sockets[socket.userID, default: 0]
            presence.sockets[socket.userID] = count + 1
            if let pending = presence.pendingOffline.removeValue(forKey: socket.userID) {
                pending.cancel()
                return false
            }
            return count == 0
        }
        let userID = socket.userID
        let contacts = (try? await self.service.store.contacts(of: userID)) ?? []
        if arrived {
            do {
                if try await self.presenceRegistry.arrived(userID) {
                    self.service.bus.publish(.presence(userID: userID, online: true, contacts: contacts))
                }
            } catch {
                self.logger.warning("cannot record presence", metadata: ["error": "\(error)"])
            }
        }
        let online = (try? await self.presenceRegistry.online(among: contacts)) ?? []
        let list = "[" + contacts.filter(online.contains).map(JSONText.quote).joined(separator: ",") + "]"
        socket.emit(EncodedEvent(name: "getOnlineUser", encodedArguments: [list]))
    }

    public func disconnected(_ socket: SocketIOSocket, reason: String) async {
        _ = self.openChats.withLock { $0.removeValue(forKey: socket.id) }
        let userID = socket.userID
        self.presence.withLock { presence in
            let count = presence.sockets[userID, default: 1] - 1
            if count > 0 {
                presence.sockets[userID] = count
                return
            }
            presence.sockets[userID] = nil
            presence.pendingOffline[userID]?.cancel()
            presence.pendingOffline[userID] = Task {
                try? await Task.sleep(for: self.offlineGrace)
                guard !Task.isCancelled else { return }
                let stillGone = self.presence.withLock { presence -> Bool in
                    guard presence.sockets[userID] == nil, !Task.isCancelled else { return false }
                    presence.pendingOffline[userID] = nil
                    return true
                }
                guard stillGone else { return }
                do {
                    if try await self.presenceRegistry.departed(userID) { self.service.bus.publish(.presence(userID: userID, online: false)) }
                } catch {
                    // The entry expires by itself and whoever sweeps it announces the departure.
                    self.logger.warning("cannot record departure", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// The users with a socket here, or within their grace period after the last one.
    @Sendable func presentUsers() -> Set<String> {
        self.presence.withLock { Set($0.sockets.keys).union($0.pendingOffline.keys) }
    }

    public func received(event: String, arguments: [JSONValue], from socket: SocketIOSocket, ack: SocketIOAck?) async {
        let payload = arguments.first
        do {
            switch event {
            case "sendMessage":
                guard let chatID = payload?["chatId"]?.stringValue else { throw APIError.badRequest("`chatId` is required.", code: "invalid_request") }
                let text = payload?["text"].flatMap { $0.isNull ? nil : $0 }
                if let text, text.stringValue == nil { throw APIError.badRequest("`text` must be a string.", code: "invalid_text") }
                let clientMessageID = payload?["clientMessageId"].flatMap { $0.isNull ? nil : $0 }
                if let clientMessageID, clientMessageID.stringValue == nil {
                    throw APIError.badRequest("`clientMessageId` must be a string.", code: "invalid_client_message_id")
                }
                // Queued in the order this socket sent them; the ack waits for the commit, this socket's next event does not.
                let pending = try await self.service.submitText(
                    chatID: chatID, userID: socket.userID, text: text?.stringValue, clientMessageID: clientMessageID?.stringValue
                )
                Task { await self.acknowledgeSend(pending, ack: ack) }
            case "markRead":
                guard let chatID = payload?["chatId"]?.stringValue, let seq = payload?["seq"]?.intValue else {
                    throw APIError.badRequest("`chatId` and a whole-number `seq` are required.", code: "invalid_request")
                }
                try await self.service.markRead(chatID: chatID, userID: socket.userID, seq: Int64(seq))
                ack?(encodedArguments: [#"{"ok":true}"#])
            case "joinChat", "leaveChat":
                guard let chatID = payload?.stringValue ?? payload?["chatId"]?.stringValue else {
                    throw APIError.badRequest("The chat id is required.", code: "invalid_request")
                }
                if event == "joinChat" {
                    guard Identifier.isValid(chatID), try await self.service.membership.members(of: chatID).contains(socket.userID) else {
                        throw ChatService.chatNotFound
                    }
                    self.openChats.withLock { $0[socket.id, default: []].insert(chatID) }
                } else {
                    _ = self.openChats.withLock { $0[socket.id]?.remove(chatID) }
                }
                ack?(encodedArguments: [#"{"ok":true}"#])
            case "typing", "stopTyping":
                guard let chatID = payload?["chatId"]?.stringValue ?? payload?.stringValue else {
                    throw APIError.badRequest("`chatId` is required.", code: "invalid_request")
                }
                try await self.typing(chatID: chatID, userID: socket.userID, isTyping: event == "typing")
                ack?(encodedArguments: [#"{"ok":true}"#])
            default:
                throw APIError.badRequest("Unknown event \(event.prefix(50)).", code: "unknown_event")
            }
        } catch let error as any APIErrorConvertible {
            ack?(encodedArguments: [error.jsonBody])
        } catch {
            self.logger.error("realtime event failed", metadata: ["event": .string(event), "error": "\(error)"])
            ack?(encodedArguments: [APIError.internalError.jsonBody])
        }
    }

    /// Relays typing and makes it expire by itself when not renewed.
    func typing(chatID: String, userID: String, isTyping: Bool) async throws {
        // Typing into a chat one is not in is ignored before any timer is armed.
        guard Identifier.isValid(chatID), try await self.service.membership.members(of: chatID).contains(userID) else { return }
        let key = chatID + "|" + userID
        let previous = self.typingTimers.withLock { timers -> Task<Void, Never>? in
            let previous = timers.removeValue(forKey: key)
            if isTyping {
                timers[key] = Task {
                    try? await Task.sleep(for: self.typingLifetime)
                    guard !Task.isCancelled else { return }
                    self.typingTimers.withLock { _ = $0.removeValue(forKey: key) }
                    try? await self.service.typing(chatID: chatID, userID: userID, isTyping: false)
                }
            }
            return previous
        }
        previous?.cancel()
        // A renewal within the lifetime is not news for the others.
        if isTyping && previous != nil { return }
        if !isTyping && previous == nil { return }
        try await self.service.typing(chatID: chatID, userID: userID, isTyping: isTyping)
    }
}
