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

    /// A `sendMessage` as the client sent it; the service checks what the text and ids may be.
    struct SendMessage: Sendable, Equatable {
        var chatID: String
        var text: String?
        var clientMessageID: String?
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
            self = .sendMessage(SendMessage(chatID: chatID, text: text?.stringValue, clientMessageID: clientMessageID?.stringValue))
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
        case "auth":
            guard let token = payload?["token"]?.stringValue else { throw APIError.badRequest("`token` is required.", code: "invalid_request") }
            self = .auth(token: token)
        default:
            throw APIError.badRequest("Unknown event \(name.prefix(50)).", code: "unknown_event")
        }
    }
}
