public import Hummingbird
public import ParleyCore

/// An image attached to a message.
public struct MessageImage: Codable, Sendable, Equatable {
    public var url: String
    public var contentType: String
    public var size: Int
    public var width: Int?
    public var height: Int?
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
    public var clientMessageId: String?
    public var createdAt: String
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
    public var members: [PublicUser]
    public var lastMessage: Message?
    public var unreadCount: Int64
    public var readState: [ReadState]
    public var updatedAt: String
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
