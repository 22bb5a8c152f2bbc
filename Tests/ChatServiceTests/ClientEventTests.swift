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
