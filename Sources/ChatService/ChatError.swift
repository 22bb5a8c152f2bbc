import HTTPTypes
public import ParleyCore

/// What the chat service refuses; each case answers as the contract says.
public enum ChatError: Error, Equatable, APIErrorConvertible {
    /// No such chat, or one the caller is not a member of (never told apart: existence does not leak).
    case chatNotFound
    /// No such user (a direct chat's other side).
    case userNotFound
    /// A group member who is not a user; named in the answer.
    case memberNotFound(String)
    /// A chat with oneself, a group of one or of more than the limit; the sentence says which.
    case invalidMembers(String)
    case invalidGroupName
    case invalidText(String)
    case textTooLong(maxLength: Int)
    case invalidClientMessageID
    case invalidSeq
    case imageTooLarge(maxBytes: Int)
    /// A file (not an image) over `PARLEY_MAX_FILE_BYTES`.
    case fileTooLarge(maxBytes: Int)
    /// An image whose header declares more pixels than may be decoded (a decompression bomb, or just too big).
    case imageDimensionsTooLarge(maxPixels: Int, maxSide: Int)
    /// The upload would take the owner past their storage quota.
    case storageQuotaExceeded(quotaBytes: Int, usedBytes: Int64)
    case unsupportedImage
    /// No such file, or its signed link is not valid (never told apart).
    case fileNotFound
    /// No message with that seq in the chat.
    case messageNotFound
    /// The message was deleted: it cannot be edited, reacted to or answered.
    case messageDeleted
    /// Only the sender may edit or delete a message.
    case notYourMessage
    /// Only text messages can be edited.
    case notEditable
    /// Not exactly one emoji.
    case invalidEmoji
    /// A message has at most so many distinct emoji, and a person so many reactions on it.
    case tooManyReactions
    /// A search without a word to look for.
    case invalidQuery(String)
    /// A group route on a direct chat: it has no name, photo, roles or members to change.
    case notAGroup
    /// Only the group's owner and admins may do this.
    case notGroupAdmin
    /// Only the group's owner may do this (hand ownership over, change or remove an admin, remove the owner).
    case notGroupOwner
    /// The owner cannot step down or be demoted without handing ownership to someone else.
    case ownerMustHandOver
    /// The user named is not a member of the group.
    case notAMember(String)
    /// Not `owner`, `admin` or `member`.
    case invalidRole
    /// Someone who may not be added (no chat shared with the caller, or a block either way: never told apart), named
    /// as the caller would see them.
    case notReachable(name: String)
    /// A direct chat with someone one blocks or who blocks one (never told apart).
    case userUnreachable
    /// Blocking oneself.
    case cannotBlockSelf
    /// Too many of one kind of action from one user (see ``UserRateLimits``): 429 with the seconds to wait.
    case rateLimited(String, retryAfter: Int)

    /// The contract's answer.
    public var apiError: APIError {
        switch self {
        case .chatNotFound: .notFound("There is no such chat.", code: "chat_not_found")
        case .userNotFound: .notFound("There is no such user.", code: "user_not_found")
        case .memberNotFound(let id): .notFound("There is no user \(id).", code: "user_not_found")
        case .invalidMembers(let message): .badRequest(message, code: "invalid_members")
        case .invalidGroupName:
            .badRequest("A group name is 1–100 characters without control or invisible formatting characters.", code: "invalid_name")
        case .invalidText(let message): .badRequest(message, code: "invalid_text")
        case .textTooLong(let maxLength): .badRequest("A message is at most \(maxLength) characters.", code: "text_too_long")
        case .invalidClientMessageID: .badRequest("`clientMessageId` is 1–100 printable ASCII characters.", code: "invalid_client_message_id")
        case .invalidSeq: .badRequest("`seq` must not be negative.", code: "invalid_seq")
        case .imageTooLarge(let maxBytes): APIError(.contentTooLarge, code: "file_too_large", message: "An image is at most \(maxBytes) bytes.")
        case .fileTooLarge(let maxBytes): APIError(.contentTooLarge, code: "file_too_large", message: "A file is at most \(maxBytes) bytes.")
        case .imageDimensionsTooLarge(let maxPixels, let maxSide):
            APIError(
                .contentTooLarge,
                code: "image_too_large",
                message: "An image is at most \(maxSide) pixels on either side and \(maxPixels) pixels in all."
            )
        case .storageQuotaExceeded(let quota, let used):
            APIError(
                .contentTooLarge,
                code: "storage_quota_exceeded",
                message: "Your files take \(used) of your \(quota) bytes; this one does not fit. Deleting messages frees their files."
            )
        case .unsupportedImage:
            APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "Only JPEG, PNG, GIF and WebP images can be sent.")
        case .fileNotFound: .notFound("There is no such file, or its link has expired.", code: "file_not_found")
        case .messageNotFound: .notFound("There is no such message in this chat.", code: "message_not_found")
        case .messageDeleted: APIError(.conflict, code: "message_deleted", message: "The message was deleted.")
        case .notYourMessage: APIError(.forbidden, code: "not_your_message", message: "Only the sender can change a message.")
        case .notEditable: APIError(.forbidden, code: "not_editable", message: "Only text messages can be edited.")
        case .invalidEmoji: .badRequest("A reaction is exactly one emoji.", code: "invalid_emoji")
        case .tooManyReactions:
            APIError(
                .conflict,
                code: "too_many_reactions",
                message:
                    "A message has at most \(ChatStore.maxEmojiPerMessage) different emoji, and a person at most \(ChatStore.maxReactionsPerUser) reactions on it."
            )
        case .invalidQuery(let message): .badRequest(message, code: "invalid_query")
        case .notAGroup: APIError(.forbidden, code: "not_a_group", message: "A direct chat has no name, photo, roles or members to change.")
        case .notGroupAdmin: APIError(.forbidden, code: "not_group_admin", message: "Only the group's owner and admins can do this.")
        case .notGroupOwner: APIError(.forbidden, code: "not_group_owner", message: "Only the group's owner can do this.")
        case .ownerMustHandOver:
            APIError(.conflict, code: "owner_must_hand_over", message: "The owner stays owner until they hand ownership to another member.")
        case .notAMember(let id): .notFound("\(id) is not a member of this group.", code: "member_not_found")
        case .invalidRole: .badRequest("`role` is \"owner\", \"admin\" or \"member\".", code: "invalid_role")
        case .notReachable(let name):
            APIError(
                .forbidden,
                code: "user_unreachable",
                message: "“\(name)” cannot be added: you can add only people you share a chat with who allow being added to groups."
            )
        case .userUnreachable: APIError(.forbidden, code: "user_unreachable", message: "This person cannot be reached.")
        case .cannotBlockSelf: .badRequest("You cannot block yourself.", code: "invalid_user")
        case .rateLimited(let what, let seconds):
            .rateLimited("Too many \(what) at once; try again in \(max(1, seconds)) s.", retryAfter: seconds)
        }
    }
}
