public import Hummingbird

/// What anyone may see of a user: never the email. The user service serves it; the chat service shows it for members.
public struct PublicUser: ResponseEncodable, Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var avatarUrl: String?

    public init(id: String, name: String, avatarUrl: String?) {
        self.id = id
        self.name = name
        self.avatarUrl = avatarUrl
    }
}
