public import Hummingbird
public import ParleyCore

/// An image attached to a message.
public struct MessageImage: Codable, Sendable, Equatable {
    public var url: String
    /// A preview at most ``Thumbnailer/maxSide`` pixels on its long side; absent when the server could not make one.
    public var thumbnailUrl: String?
    public var contentType: String
    public var size: Int
    public var width: Int?
    public var height: Int?
}

/// A file of any other kind attached to a message: always downloaded, never shown in place.
public struct MessageFile: Codable, Sendable, Equatable {
    public var url: String
    /// The uploader's name for it, sanitised.
    public var name: String
    /// Told from its bytes where they say (`application/octet-stream` otherwise), never from the uploader's claim.
    public var contentType: String
    public var size: Int
}

/// A message as clients see it.
public struct Message: Codable, Sendable, Equatable, ResponseEncodable {
    public var id: String
    public var chatId: String
    public var seq: Int64
    public var senderId: String
    public var kind: String
    public var text: String?
    public var image: MessageImage?
    public var file: MessageFile?
    public var clientMessageId: String?
    public var createdAt: String
    /// The chat's change version at this message's latest change.
    public var version: Int64
    public var editedAt: String?
    public var replyTo: ReplyPreview?
    public var reactions: [Reaction]
    public var mentions: [String]
    /// What a `system` message tells: a change to the group.
    public var system: SystemEvent?
}

/// A change to a group, told in its timeline as a message of kind `system` ("Ann added Ben").
public struct SystemEvent: Codable, Sendable, Equatable {
    /// `added`, `removed`, `left`, `renamed`, `photo`, `role` or `owner`.
    public var action: String
    /// Who made the change (for `left`, who left; for an `owner` handed over on leaving, the owner who left).
    public var actorId: String
    /// Whom it concerns: the people added or removed, the member whose role changed, the new owner.
    public var userIds: [String]?
    /// The new name (`renamed`).
    public var name: String?
    /// The new role (`role`): `admin` or `member`.
    public var role: String?
}

/// A member of a chat as the chat shows them: their public profile and their role.
public struct ChatMember: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var avatarUrl: String?
    /// `owner`, `admin` or `member` (everyone in a direct chat is a `member`).
    public var role: String
}

/// What a reply shows of the message it answers, as that message is now.
public struct ReplyPreview: Codable, Sendable, Equatable {
    public var seq: Int64
    public var senderId: String
    public var kind: String
    /// At most ``ReplyPreview/maxText`` characters.
    public var text: String?

    static let maxText = 200
}

/// One emoji on a message and who reacted with it, in the order they did.
public struct Reaction: Codable, Sendable, Equatable {
    public var emoji: String
    public var userIds: [String]
}

/// A member's read pointer.
public struct ReadState: Codable, Sendable, Equatable {
    public var userId: String
    public var lastReadSeq: Int64
}

/// A chat as one member sees it in the list.
public struct ChatSummary: Codable, Sendable, Equatable, ResponseEncodable {
    public var id: String
    public var kind: String
    public var name: String?
    /// The group's photo, a signed URL like a file's; absent when it has none (and for direct chats).
    public var avatarUrl: String?
    public var members: [ChatMember]
    public var lastMessage: Message?
    public var unreadCount: Int64
    public var readState: [ReadState]
    public var updatedAt: String
    /// The chat's change version: the latest change to any of its messages.
    public var version: Int64
    /// Messages after the caller's read pointer that mention them.
    public var mentionCount: Int64
}

struct ChatEnvelope: ResponseEncodable {
    var chat: ChatSummary
}

struct ChatPage: ResponseEncodable {
    var chats: [ChatSummary]
    var nextCursor: String?
}

struct MessagePage: ResponseEncodable {
    var messages: [Message]
    var hasMore: Bool
}

/// A page of messages around one: `hasMore` tells of older ones, `hasMoreAfter` of newer ones.
struct MessagePageAround: ResponseEncodable {
    var messages: [Message]
    var hasMore: Bool
    var hasMoreAfter: Bool
}

/// `GET /chats/{id}/changes`: the messages changed after a version, and the version the caller stands at after them.
struct ChangePage: ResponseEncodable {
    var messages: [Message]
    var version: Int64
    var hasMore: Bool
}

/// A search hit: the message and the ranges of its text (UTF-16 code units) that matched.
struct SearchResult: ResponseEncodable {
    var message: Message
    var highlights: [TextRange]
}

struct TextRange: ResponseEncodable, Equatable {
    var start: Int
    var end: Int
}

struct SearchPage: ResponseEncodable {
    var results: [SearchResult]
    var nextCursor: String?
}

/// `PATCH /chats/{id}`: absent fields stay as they are; `"avatarFileId": null` removes the photo.
struct UpdateGroupRequest: Decodable {
    var name: String?
    var avatarFileId: String??

    enum CodingKeys: String, CodingKey { case name, avatarFileId }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try container.decodeIfPresent(String.self, forKey: .name)
        if container.contains(.avatarFileId) {
            self.avatarFileId = .some(try container.decodeNil(forKey: .avatarFileId) ? nil : try container.decode(String.self, forKey: .avatarFileId))
        } else {
            self.avatarFileId = nil
        }
    }
}

/// `POST /chats/{id}/members`.
struct AddMembersRequest: Decodable {
    var userIds: [String]
}

/// `PUT /chats/{id}/members/{userId}/role`.
struct RoleRequest: Decodable {
    var role: String
}

/// `GET /blocks`.
struct BlockList: ResponseEncodable {
    var users: [PublicUser]
}

struct EditMessageRequest: Decodable {
    var text: String?
}

struct MessageEnvelope: ResponseEncodable {
    var message: Message
}

/// `POST /chats`: `{"userId"}` for a direct chat, `{"name","memberIds"}` for a group.
struct CreateChatRequest: Decodable {
    var userId: String?
    var name: String?
    var memberIds: [String]?
}

struct SendMessageRequest: Decodable {
    var text: String?
    var clientMessageId: String?
    var replyToSeq: Int64?
}

struct ReadRequest: Decodable {
    var seq: Int64
}

/// An uploaded image, as its uploader sees it.
struct UploadedFile: Codable {
    var id: String
    var url: String
    var contentType: String
    var size: Int
    var width: Int?
    var height: Int?
}

struct FileEnvelope: ResponseEncodable {
    var file: UploadedFile
}

extension Message {
    /// The message as JSON text: what `JSONEncoder` writes, member for member (absent optionals left out; the members
    /// in declaration order, where Foundation's follow a hash), written by hand: it is encoded for every send's ack and
    /// every fan-out, where Foundation's encoder took about a tenth of the server's CPU. `MessageJSONTests` holds it to
    /// `JSONEncoder`'s output.
    public var jsonText: String {
        var object = JSONObjectText(capacity: 512 + (self.text?.utf8.count ?? 0))
        object.add("id", self.id)
        object.add("chatId", self.chatId)
        object.add("seq", self.seq)
        object.add("senderId", self.senderId)
        object.add("kind", self.kind)
        object.add("text", self.text)
        object.add("image", json: self.image?.jsonText)
        object.add("file", json: self.file?.jsonText)
        object.add("clientMessageId", self.clientMessageId)
        object.add("createdAt", self.createdAt)
        object.add("version", self.version)
        object.add("editedAt", self.editedAt)
        object.add("replyTo", json: self.replyTo?.jsonText)
        object.add("reactions", json: self.reactions.isEmpty ? "[]" : "[" + self.reactions.map(\.jsonText).joined(separator: ",") + "]")
        object.add("mentions", self.mentions)
        object.add("system", json: self.system?.jsonText)
        return object.finished
    }
}

extension MessageImage {
    var jsonText: String {
        var object = JSONObjectText()
        object.add("url", self.url)
        object.add("thumbnailUrl", self.thumbnailUrl)
        object.add("contentType", self.contentType)
        object.add("size", self.size)
        object.add("width", self.width)
        object.add("height", self.height)
        return object.finished
    }
}

extension MessageFile {
    var jsonText: String {
        var object = JSONObjectText()
        object.add("url", self.url)
        object.add("name", self.name)
        object.add("contentType", self.contentType)
        object.add("size", self.size)
        return object.finished
    }
}

extension ReplyPreview {
    var jsonText: String {
        var object = JSONObjectText()
        object.add("seq", self.seq)
        object.add("senderId", self.senderId)
        object.add("kind", self.kind)
        object.add("text", self.text)
        return object.finished
    }
}

extension Reaction {
    var jsonText: String {
        var object = JSONObjectText()
        object.add("emoji", self.emoji)
        object.add("userIds", self.userIds)
        return object.finished
    }
}

extension SystemEvent {
    var jsonText: String {
        var object = JSONObjectText()
        object.add("action", self.action)
        object.add("actorId", self.actorId)
        object.add("userIds", self.userIds)
        object.add("name", self.name)
        object.add("role", self.role)
        return object.finished
    }
}
