/// The outbox payload of a missed-message mail (template `missed_messages`): what the chat service found unread for a
/// user, ready to render. The mail worker checks the listed messages again just before it sends, and leaves out what
/// has been read meanwhile (on any device), or drops the mail when nothing is left.
public struct MissedMessagesMail: Codable, Sendable, Equatable {
    public static let template = "missed_messages"

    /// One listed message.
    public struct Item: Codable, Sendable, Equatable {
        public var chatID: String
        public var seq: Int64
        /// The group's name; nil for a direct message.
        public var chatName: String?
        public var senderName: String
        /// The start of the text (mentions written as @Name), or "[image]", "[file]".
        public var snippet: String
        /// When it was sent, in milliseconds since 1970.
        public var createdAt: Int64

        public init(chatID: String, seq: Int64, chatName: String?, senderName: String, snippet: String, createdAt: Int64) {
            self.chatID = chatID
            self.seq = seq
            self.chatName = chatName
            self.senderName = senderName
            self.snippet = snippet
            self.createdAt = createdAt
        }
    }

    public var userID: String
    /// The web app's address, links to chats start with it.
    public var appURL: String
    /// The signed one-click unsubscribe link (RFC 8058).
    public var unsubscribeURL: String
    /// The messages listed, oldest first (at most ``listed``).
    public var items: [Item]
    /// How many unread messages were found beyond those listed.
    public var more: Int

    /// The most messages one mail lists.
    public static let listed = 10

    public init(userID: String, appURL: String, unsubscribeURL: String, items: [Item], more: Int) {
        self.userID = userID
        self.appURL = appURL
        self.unsubscribeURL = unsubscribeURL
        self.items = items
        self.more = more
    }
}
