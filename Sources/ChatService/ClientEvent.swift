import ParleyCore
import SocketIOProtocol

/// A client → server event, decoded once from its name and first argument; anything malformed is refused here with the
/// error its ack answers, before any work is done.
enum ClientEvent: Sendable, Equatable {
    case sendMessage(SendMessage)
    case markRead(chatID: String, seq: Int64)
    /// `joinChat` (`open`) or `leaveChat`: messages that arrive while a chat is open on a socket are read.
    case openChat(chatID: String, open: Bool)
    /// `typing` or `stopTyping`.
    case typing(chatID: String, isTyping: Bool)
    /// `auth`: renews the socket's authority with a fresh access token of the same user.
    case auth(token: String)
    /// `editMessage`, `deleteMessage` or `react`: a change to message `seq` (the action validated already).
    case change(chatID: String, seq: Int64, action: ChatStore.MessageChange.Action)

    /// A `sendMessage` as the client sent it; the service checks what the text and ids may be.
    struct SendMessage: Sendable, Equatable {
        var chatID: String
        var text: String?
        var clientMessageID: String?
        var replyToSeq: Int64? = nil
    }

    /// Decodes the event `name` with its first argument.
    init(name: String, payload: JSONValue?) throws(APIError) {
        switch name {
        case "sendMessage":
            guard let chatID = payload?["chatId"]?.stringValue else { throw APIError.badRequest("`chatId` is required.", code: "invalid_request") }
            // Present means a string: `null` is refused too, as it always was on this event (the REST route reads it as absent).
            let text = payload?["text"]
            if let text, text.stringValue == nil { throw APIError.badRequest("`text` must be a string.", code: "invalid_text") }
            let clientMessageID = payload?["clientMessageId"]
            if let clientMessageID, clientMessageID.stringValue == nil {
                throw APIError.badRequest("`clientMessageId` must be a string.", code: "invalid_client_message_id")
            }
            let replyToSeq = payload?["replyToSeq"]
            if let replyToSeq, replyToSeq != .null, replyToSeq.intValue == nil {
                throw APIError.badRequest("`replyToSeq` must be a whole number.", code: "invalid_seq")
            }
            self = .sendMessage(
                SendMessage(
                    chatID: chatID,
                    text: text?.stringValue,
                    clientMessageID: clientMessageID?.stringValue,
                    replyToSeq: replyToSeq?.intValue.map(Int64.init)
                )
            )
        case "markRead":
            guard let chatID = payload?["chatId"]?.stringValue, let seq = payload?["seq"]?.intValue else {
                throw APIError.badRequest("`chatId` and a whole-number `seq` are required.", code: "invalid_request")
            }
            self = .markRead(chatID: chatID, seq: Int64(seq))
        case "joinChat", "leaveChat":
            guard let chatID = payload?.stringValue ?? payload?["chatId"]?.stringValue else {
                throw APIError.badRequest("The chat id is required.", code: "invalid_request")
            }
            self = .openChat(chatID: chatID, open: name == "joinChat")
        case "typing", "stopTyping":
            guard let chatID = payload?["chatId"]?.stringValue ?? payload?.stringValue else {
                throw APIError.badRequest("`chatId` is required.", code: "invalid_request")
            }
            self = .typing(chatID: chatID, isTyping: name == "typing")
        case "editMessage", "deleteMessage", "react":
            guard let chatID = payload?["chatId"]?.stringValue, let seq = payload?["seq"]?.intValue else {
                throw APIError.badRequest("`chatId` and a whole-number `seq` are required.", code: "invalid_request")
            }
            guard seq >= 0 else { throw APIError(from: ChatError.invalidSeq) }
            let action: ChatStore.MessageChange.Action
            do {
                switch name {
                case "editMessage":
                    guard let text = payload?["text"]?.stringValue else {
                        throw APIError.badRequest("`text` must be a string.", code: "invalid_text")
                    }
                    action = try ChatService.editAction(text: text)
                case "deleteMessage":
                    action = .delete
                default:
                    guard let emoji = payload?["emoji"]?.stringValue else { throw ChatError.invalidEmoji }
                    guard let on = payload?["on"]?.boolValue else {
                        throw APIError.badRequest("`on` must be true (add) or false (remove).", code: "invalid_request")
                    }
                    action = try ChatService.reactAction(emoji: emoji, on: on)
                }
            } catch let error as APIError {
                throw error
            } catch {
                throw APIError(from: error)
            }
            self = .change(chatID: chatID, seq: Int64(seq), action: action)
        case "auth":
            guard let token = payload?["token"]?.stringValue else { throw APIError.badRequest("`token` is required.", code: "invalid_request") }
            self = .auth(token: token)
        default:
            throw APIError.badRequest("Unknown event \(name.prefix(50)).", code: "unknown_event")
        }
    }
}
