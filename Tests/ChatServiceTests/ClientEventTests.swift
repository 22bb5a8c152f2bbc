import HTTPTypes
import ParleyCore
import SocketIOProtocol
import Testing

@testable import ChatService

@Suite("Client events decoded once into typed values")
struct ClientEventTests {
    func decode(_ name: String, _ payload: String?) throws -> ClientEvent {
        try ClientEvent(name: name, payload: payload.map { try JSONValue(parsing: $0) })
    }

    func refusal(_ name: String, _ payload: String?) -> APIError? {
        do {
            _ = try self.decode(name, payload)
            return nil
        } catch let error as APIError {
            return error
        } catch {
            Issue.record("not an APIError: \(error)")
            return nil
        }
    }

    @Test("every event of the contract decodes with its payload")
    func contractEvents() throws {
        #expect(
            try self.decode("sendMessage", #"{"chatId":"c1","text":"hi","clientMessageId":"k1"}"#)
                == .sendMessage(.init(chatID: "c1", text: "hi", clientMessageID: "k1"))
        )
        #expect(try self.decode("sendMessage", #"{"chatId":"c1"}"#) == .sendMessage(.init(chatID: "c1", text: nil, clientMessageID: nil)))
        #expect(try self.decode("markRead", #"{"chatId":"c1","seq":7}"#) == .markRead(chatID: "c1", seq: 7))
        #expect(try self.decode("joinChat", #""c1""#) == .openChat(chatID: "c1", open: true))
        #expect(try self.decode("joinChat", #"{"chatId":"c1"}"#) == .openChat(chatID: "c1", open: true))
        #expect(try self.decode("leaveChat", #""c1""#) == .openChat(chatID: "c1", open: false))
        #expect(try self.decode("typing", #"{"chatId":"c1"}"#) == .typing(chatID: "c1", isTyping: true))
        #expect(try self.decode("stopTyping", #""c1""#) == .typing(chatID: "c1", isTyping: false))
        #expect(
            try self.decode("sendMessage", #"{"chatId":"c1","text":"re","replyToSeq":3}"#)
                == .sendMessage(.init(chatID: "c1", text: "re", clientMessageID: nil, replyToSeq: 3))
        )
        #expect(
            try self.decode("editMessage", #"{"chatId":"c1","seq":2,"text":"hi <@0190a000-0000-7000-8000-000000000001>"}"#)
                == .change(
                    chatID: "c1",
                    seq: 2,
                    action: .edit(text: "hi <@0190a000-0000-7000-8000-000000000001>", mentionCandidates: ["0190a000-0000-7000-8000-000000000001"])
                )
        )
        #expect(try self.decode("deleteMessage", #"{"chatId":"c1","seq":2}"#) == .change(chatID: "c1", seq: 2, action: .delete))
        #expect(
            try self.decode("react", #"{"chatId":"c1","seq":2,"emoji":"👍🏽","on":false}"#)
                == .change(chatID: "c1", seq: 2, action: .react(emoji: "👍🏽", on: false))
        )
    }

    @Test(
        "malformed payloads are refused with the code their ack answers",
        arguments: [
            ("sendMessage", nil, "invalid_request"),
            ("sendMessage", #"{"chatId":5,"text":"x"}"#, "invalid_request"),
            ("sendMessage", #"{"chatId":"c1","text":5}"#, "invalid_text"),
            ("sendMessage", #"{"chatId":"c1","text":["a"]}"#, "invalid_text"),
            ("sendMessage", #"{"chatId":"c1","text":null}"#, "invalid_text"),
            ("sendMessage", #"{"chatId":"c1","text":"x","clientMessageId":null}"#, "invalid_client_message_id"),
            ("sendMessage", #"{"chatId":"c1","text":"x","clientMessageId":{"a":1}}"#, "invalid_client_message_id"),
            ("sendMessage", #"["c1","hello"]"#, "invalid_request"),
            ("markRead", #"{"chatId":"c1","seq":1.5}"#, "invalid_request"),
            ("markRead", #"{"chatId":"c1","seq":"7"}"#, "invalid_request"),
            ("markRead", #"{"chatId":"c1","seq":1e300}"#, "invalid_request"),
            ("markRead", #"{"seq":7}"#, "invalid_request"),
            ("joinChat", nil, "invalid_request"),
            ("joinChat", #"{"chatId":["c1"]}"#, "invalid_request"),
            ("leaveChat", "42", "invalid_request"),
            ("typing", #"{"chat":"c1"}"#, "invalid_request"),
            ("stopTyping", "null", "invalid_request"),
            ("sendMessage", #"{"chatId":"c1","text":"x","replyToSeq":"3"}"#, "invalid_seq"),
            ("sendMessage", #"{"chatId":"c1","text":"x","replyToSeq":1.5}"#, "invalid_seq"),
            ("editMessage", #"{"chatId":"c1","seq":1}"#, "invalid_text"),
            ("editMessage", #"{"chatId":"c1","seq":1,"text":"  "}"#, "invalid_text"),
            ("editMessage", #"{"chatId":"c1","seq":-1,"text":"x"}"#, "invalid_seq"),
            ("editMessage", #"{"chatId":"c1","text":"x"}"#, "invalid_request"),
            ("deleteMessage", #"{"chatId":"c1","seq":"1"}"#, "invalid_request"),
            ("react", #"{"chatId":"c1","seq":1,"emoji":"like","on":true}"#, "invalid_emoji"),
            ("react", #"{"chatId":"c1","seq":1,"emoji":"👍"}"#, "invalid_request"),
            ("react", #"{"chatId":"c1","seq":1,"on":true}"#, "invalid_emoji"),
        ] as [(String, String?, String)]
    )
    func malformed(name: String, payload: String?, code: String) throws {
        let error = try #require(self.refusal(name, payload))
        #expect(error.status == .badRequest)
        #expect(error.code == code)
    }

    @Test("an unknown event is refused as unknown_event, its name cut in the message")
    func unknownEvent() throws {
        let error = try #require(self.refusal(String(repeating: "x", count: 10_000), #"{"chatId":"c1"}"#))
        #expect(error.code == "unknown_event" && error.status == .badRequest)
        #expect(error.message == "Unknown event \(String(repeating: "x", count: 50)).")
        #expect(self.refusal("SendMessage", nil)?.code == "unknown_event")
        #expect(self.refusal("", nil)?.code == "unknown_event")
    }
}
