import SocketIOProtocol
import Testing

/// Splitting EVENT data into a name and arguments, and building it from encoded arguments.
struct SocketEventTests {
    @Test func splitsNameAndArguments() throws {
        let event = try SocketEvent(parsing: #"["sendMessage",{"chatId":"c1","text":"hi","clientMessageId":"k1"}]"#)
        #expect(event.name == "sendMessage")
        #expect(event.arguments == [["chatId": "c1", "text": "hi", "clientMessageId": "k1"]])
        #expect(event.arguments.first?["chatId"]?.stringValue == "c1")
    }

    @Test func eventWithSeveralArgumentsFromTheTestSuite() throws {
        let event = try SocketEvent(parsing: #"["message",1,"2",{"3":[true]}]"#)
        #expect(event == SocketEvent(name: "message", arguments: [1, "2", ["3": [true]]]))
    }

    @Test func eventWithoutArguments() throws {
        #expect(try SocketEvent(parsing: #"["hello"]"#) == SocketEvent(name: "hello"))
        #expect(try SocketEvent(parsing: #" [ "joinChat" , "c1" ] "#) == SocketEvent(name: "joinChat", arguments: ["c1"]))
    }

    @Test func buildsDataFromEncodedArguments() {
        let text = SocketEvent.dataText(name: "newMessage", encodedArguments: [#"{"id":"m1","seq":3}"#])
        #expect(text == #"["newMessage",{"id":"m1","seq":3}]"#)
        #expect(SocketEvent.dataText(name: "getOnlineUser", encodedArguments: [#"["u1","u2"]"#]) == #"["getOnlineUser",["u1","u2"]]"#)
        #expect(SocketEvent.dataText(name: "a\"b", encodedArguments: []) == #"["a\"b"]"#)
    }

    @Test func buildsDataFromValues() {
        let event = SocketEvent(name: "userTyping", arguments: [["chatId": "c1", "userId": "u1"]])
        #expect(event.dataText() == #"["userTyping",{"chatId":"c1","userId":"u1"}]"#)
    }

    @Test func parsesWhatItBuilds() throws {
        let event = SocketEvent(name: "hey", arguments: ["Jude", 1.5, nil, false, [], [:]])
        #expect(try SocketEvent(parsing: event.dataText()) == event)
    }

    @Test func invalidJSONIsRefusedWithTheParserError() {
        #expect(throws: SocketEventError.invalidJSON(.unexpectedEnd)) { try SocketEvent(parsing: #"["a""#) }
        #expect(throws: SocketEventError.invalidJSON(.unexpectedCharacter(offset: 1))) { try SocketEvent(parsing: "[x]") }
    }

    @Test func depthLimitAppliesToTheWholeArray() throws {
        let nested = String(repeating: "[", count: 63) + String(repeating: "]", count: 63)
        #expect(try SocketEvent(parsing: #"["a","# + nested + "]").arguments.count == 1)
        #expect(throws: SocketEventError.invalidJSON(.depthLimitExceeded(offset: 68))) {
            try SocketEvent(parsing: #"["a","# + "[" + nested + "]" + "]")
        }
    }

    @Test("data that is not an array is refused", arguments: ["{}", #""hello""#, "1", "null"])
    func nonArrayIsRefused(text: String) {
        #expect(throws: SocketEventError.notAnArray) { try SocketEvent(parsing: text) }
    }

    @Test func emptyArrayHasNoName() {
        #expect(throws: SocketEventError.missingName) { try SocketEvent(parsing: "[]") }
    }

    @Test("a name that is not a string is refused", arguments: ["[1]", "[null]", #"[["a"]]"#, #"[{"a":1}]"#, "[true]"])
    func nonStringNameIsRefused(text: String) {
        #expect(throws: SocketEventError.nameNotAString) { try SocketEvent(parsing: text) }
    }

    @Test("reserved names are refused", arguments: ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"])
    func reservedNameIsRefused(name: String) {
        #expect(throws: SocketEventError.reservedName(name)) { try SocketEvent(parsing: "[\"\(name)\",{}]") }
        #expect(SocketEvent.reservedNames.contains(name))
    }
}
