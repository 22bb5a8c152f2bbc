public import Hummingbird
import ParleyCore

/// The signed-in user's own profile.
public struct User: ResponseEncodable, Codable, Sendable, Equatable {
    public var id: String
    public var email: String
    public var name: String
    public var avatarUrl: String?
    /// Whether missed-message mail is on (it is unless turned off).
    public var emailNotifications: Bool
    /// Whether people who share a chat with this user may add them to groups (they may unless turned off).
    public var allowGroupAdds: Bool
    public var createdAt: String
}

struct LoginRequest: Decodable {
    var email: String
}

struct LoginResponse: ResponseEncodable {
    var message: String
    var retryAfterSeconds: Int
}

struct VerifyRequest: Decodable {
    var email: String
    var otp: String
}

struct RefreshRequest: Decodable {
    var refreshToken: String
}

/// The answer of verify and refresh.
struct SessionResponse: ResponseEncodable {
    var user: User
    var accessToken: String
    var refreshToken: String
    var expiresIn: Int
}

struct UpdateProfileRequest: Decodable {
    var name: String?
    var avatarFileId: String??
    var emailNotifications: Bool?
    var allowGroupAdds: Bool?

    enum CodingKeys: String, CodingKey { case name, avatarFileId, emailNotifications, allowGroupAdds }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try container.decodeIfPresent(String.self, forKey: .name)
        // A setting is true or false: null is refused, not taken for "leave it".
        self.emailNotifications = container.contains(.emailNotifications) ? try container.decode(Bool.self, forKey: .emailNotifications) : nil
        self.allowGroupAdds = container.contains(.allowGroupAdds) ? try container.decode(Bool.self, forKey: .allowGroupAdds) : nil
        // Absent leaves the avatar alone; null removes it.
        if container.contains(.avatarFileId) {
            self.avatarFileId = .some(try container.decodeNil(forKey: .avatarFileId) ? nil : try container.decode(String.self, forKey: .avatarFileId))
        } else {
            self.avatarFileId = nil
        }
    }
}

struct UserPage: ResponseEncodable {
    var users: [PublicUser]
    var nextCursor: String?
}
