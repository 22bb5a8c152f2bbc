public import Hummingbird

/// What a service that mails people needs of them, and nobody else may see: their name, their address and whether they
/// take missed-message mail. The user service serves it on `GET /internal/v1/users` to other services only.
public struct MailContact: ResponseEncodable, Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var email: String
    /// The user's `emailNotifications` setting.
    public var missedMessageMail: Bool

    public init(id: String, name: String, email: String, missedMessageMail: Bool) {
        self.id = id
        self.name = name
        self.email = email
        self.missedMessageMail = missedMessageMail
    }
}

/// The answer of `GET /internal/v1/users`: the contacts of those asked for that exist.
public struct MailContactList: ResponseEncodable, Codable, Sendable {
    public var users: [MailContact]

    public init(users: [MailContact]) {
        self.users = users
    }
}
