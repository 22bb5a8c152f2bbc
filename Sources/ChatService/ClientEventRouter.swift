import Logging
import ParleyCore
import SocketIOProtocol
import SocketIOServer

/// Carries out decoded client events and answers each one's ack: `{"ok":true,…}`, or the contract's error body.
struct ClientEventRouter: Sendable {
    /// Sends the ack's arguments, already JSON text.
    typealias Ack = @Sendable (_ encodedArguments: [String]) -> Void

    /// Who sent an event: the socket's user (from its token, never from the client) and the socket.
    struct Caller: Sendable {
        var userID: String
        var socketID: String
    }

    let service: ChatService
    let typing: TypingRelay
    let reads: ReadOnDelivery
    /// The authority of each socket's token: an expired one may only renew.
    let authority: SocketAuthority
    /// Owns the sends waiting for their commit.
    let tasks: BackgroundTasks
    let logger: Logger

    static let ok = #"{"ok":true}"#

    /// Decodes the event `name` once and carries it out.
    func receive(name: String, payload: JSONValue?, from caller: Caller, ack: Ack?) async {
        do {
            try await self.handle(ClientEvent(name: name, payload: payload), from: caller, ack: ack)
        } catch {
            self.answer(ack, error: error, event: name)
        }
    }

    /// Carries out `event`; the ack is answered here, or by the task that waits for a send's commit.
    func handle(_ event: ClientEvent, from caller: Caller, ack: Ack?) async throws {
        if case .auth = event {
        } else if self.authority.hasExpired(caller.socketID) {
            throw APIError.unauthorized("The socket's access token has expired; send `auth` with a fresh one.", code: "token_expired")
        }
        switch event {
        case .auth(let token):
            let expiresAt = try await self.authority.renew(caller.socketID, userID: caller.userID, token: token)
            ack?([#"{"ok":true,"expiresAt":"# + JSONText.quote(Timestamp.iso8601(millis: Timestamp.millis(expiresAt))) + "}"])
        case .sendMessage(let send):
            let received = ContinuousClock.now
            // Queued in the order this socket sent them; the ack waits for the commit, this socket's next event does not.
            let pending = try await self.service.submitText(
                chatID: send.chatID,
                userID: caller.userID,
                text: send.text,
                clientMessageID: send.clientMessageID,
                replyToSeq: send.replyToSeq
            )
            self.answerWhenStored(pending, for: caller.userID, ack: ack, event: "sendMessage", received: received)
        case .change(let chatID, let seq, let action):
            // Like a send: queued in this socket's order, answered once committed.
            let pending = try await self.service.submitChange(chatID: chatID, seq: seq, userID: caller.userID, action: action)
            self.answerWhenStored(pending, for: caller.userID, ack: ack, event: "change")
        case .markRead(let chatID, let seq):
            try await self.service.markRead(chatID: chatID, userID: caller.userID, seq: seq)
            ack?([Self.ok])
        case .openChat(let chatID, open: true):
            guard Identifier.isValid(chatID), try await self.service.membership.members(of: chatID).contains(caller.userID) else {
                throw ChatService.chatNotFound
            }
            self.reads.open(chatID, socketID: caller.socketID, userID: caller.userID)
            ack?([Self.ok])
        case .openChat(let chatID, open: false):
            self.reads.close(chatID, socketID: caller.socketID)
            ack?([Self.ok])
        case .typing(let chatID, let isTyping):
            try self.service.limits.take(.typing, userID: caller.userID)
            try await self.typing.typing(chatID: chatID, userID: caller.userID, isTyping: isTyping)
            ack?([Self.ok])
        }
    }

    /// Answers `ack` with the message a submitted write became, as `userID` sees it, once its batch is committed (or with
    /// its error). A send `received` at that instant has its time to the ack recorded.
    func answerWhenStored(_ pending: PendingAppend, for userID: String, ack: Ack?, event: String, received: ContinuousClock.Instant? = nil) {
        self.tasks.add {
            do {
                let (message, _) = try await self.service.sent(pending, for: userID)
                ack?([#"{"ok":true,"message":"# + message.jsonText + "}"])
                if let received { ChatMetrics.shared.acked(sendReceived: received) }
            } catch {
                self.answer(ack, error: error, event: event)
            }
        }
    }

    /// Answers a failed event with the contract's error body, through the same conversion as HTTP; real faults are logged.
    func answer(_ ack: Ack?, error: any Error, event: String) {
        if APIError.isServerFault(error) {
            self.logger.error("realtime event failed", metadata: ["event": .string(String(event.prefix(50))), "error": "\(error)"])
        }
        ack?([APIError(from: error).jsonBody])
    }
}
