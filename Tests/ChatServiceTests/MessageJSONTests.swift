import Foundation
import ParleyCore
import Testing

@testable import ChatService

/// `Message.jsonText`, written by hand for the send path, says what `JSONEncoder` says of the same message.
@Suite struct MessageJSONTests {
    static let plain = Message(
        id: "01a24601-d1d2-740e-9504-55810f71926a",
        chatId: "01a24601-d0df-7cff-b22b-9747f6cc54b5",
        seq: 42,
        senderId: "01a24601-d1dd-7e8c-af36-172c72a582cd",
        kind: "text",
        text: "hello",
        image: nil,
        file: nil,
        clientMessageId: nil,
        createdAt: "2026-12-05T11:40:55.123Z",
        version: 43,
        editedAt: nil,
        replyTo: nil,
        reactions: [],
        mentions: [],
        system: nil
    )

    /// Every member present, and every kind of string a JSON encoder must escape.
    static var full: Message {
        var message = Self.plain
        message.text = "quote \" backslash \\ slash / newline \n tab \t return \r bell \u{7} nul \u{0} \u{1F} é 漢字 👍🏽 \u{2028} \u{2029} </script>"
        message.image = MessageImage(
            url: "https://chat.example/api/v1/files/a?exp=1&sig=x/y+z",
            thumbnailUrl: "https://chat.example/t",
            contentType: "image/png",
            size: 123_456,
            width: 640,
            height: 480
        )
        message.file = MessageFile(url: "https://chat.example/f", name: "report \"final\".pdf", contentType: "application/pdf", size: 0)
        message.clientMessageId = "client-1"
        message.editedAt = "2026-12-05T11:41:00.000Z"
        message.replyTo = ReplyPreview(seq: 7, senderId: "someone", kind: "image", text: nil)
        message.reactions = [Reaction(emoji: "👍", userIds: ["a", "b"]), Reaction(emoji: "❤️", userIds: [])]
        message.mentions = ["a", "b\"c"]
        message.system = SystemEvent(action: "renamed", actorId: "a", userIds: nil, name: "Ann's \"group\"", role: nil)
        return message
    }

    static var samples: [Message] {
        var imageOnly = Self.plain
        imageOnly.text = nil
        imageOnly.kind = "image"
        imageOnly.image = MessageImage(url: "u", thumbnailUrl: nil, contentType: "image/gif", size: 1, width: nil, height: nil)
        var system = Self.plain
        system.kind = "system"
        system.system = SystemEvent(action: "role", actorId: "a", userIds: ["b"], name: nil, role: "admin")
        var negative = Self.plain
        negative.seq = Int64.max
        negative.version = Int64.min
        return [Self.plain, Self.full, imageOnly, system, negative]
    }

    @Test("the hand-written text parses to what JSONEncoder writes, member for member, and decodes to the same message", arguments: samples)
    func sameAsJSONEncoder(message: Message) throws {
        let mine = message.jsonText
        let foundation = try JSONEncoder().encode(message)
        let parsedMine = try #require(try JSONSerialization.jsonObject(with: Data(mine.utf8)) as? NSDictionary)
        let parsedFoundation = try #require(try JSONSerialization.jsonObject(with: foundation) as? NSDictionary)
        #expect(parsedMine == parsedFoundation)
        #expect(try JSONDecoder().decode(Message.self, from: Data(mine.utf8)) == message)
    }

    @Test("a message of the longest text is written whole")
    func longText() throws {
        var message = Self.plain
        message.text = String(repeating: "ab\"\n", count: ChatService.maxTextLength / 4)
        let parsed = try JSONDecoder().decode(Message.self, from: Data(message.jsonText.utf8))
        #expect(parsed.text == message.text)
    }
}
