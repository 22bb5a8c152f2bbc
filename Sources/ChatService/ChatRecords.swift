import Foundation
import ParleyCore
import ParleyStore
import SQLKit

/// A message row, before its image URL is signed for the reader.
package struct MessageRecord: Sendable, Equatable, Codable {
    var id: String
    var chatID: String
    var seq: Int64
    var senderID: String
    var kind: String
    var text: String?
    var fileID: String?
    var clientMessageID: String?
    var createdAt: Int64
    var file: FileRecord?
    /// The chat's version at this message's latest change, and when that was.
    var version: Int64
    var changedAt: Int64
    var editedAt: Int64?
    var replyToSeq: Int64?
    /// The answered message as it is now (read with this one).
    var replyTo: ReplyPreview?
    var reactions: [Reaction]
    var mentions: [String]
    /// What a system message tells (kind `system`).
    var system: SystemEvent?
    /// The member this message is kept from: the one who blocks its writer (it reads as a tombstone to them, and reaches
    /// none of their sockets). Never shown to anyone.
    var hiddenFrom: String?
    /// The same of the answered message.
    var replyHiddenFrom: String?
    /// What the blocker still sees of this message, once the person they block changed it under the block (an edit of
    /// what the blocker had seen, a reaction): their view stays as it was. Never shown to anyone else.
    var kept: KeptView?
    /// The answered message's kept view, for its preview.
    var replyKept: KeptView?

    static let columns: SQLQueryString = """
        m.id, m.chat_id, m.seq, m.sender_id, m.kind, m.text, m.file_id, m.client_message_id, m.created_at,
        m.version, m.changed_at, m.edited_at, m.reply_to_seq, m.reactions, m.mentions, m.system, m.hidden_from, m.kept_view,
        f.content_type AS f_content_type, f.size AS f_size, f.width AS f_width, f.height AS f_height, f.kind AS f_kind, f.name AS f_name,
        t.id AS t_id,
        r.sender_id AS r_sender_id, r.kind AS r_kind, r.text AS r_text, r.hidden_from AS r_hidden_from,
        r.kept_view AS r_kept_view
        """
    /// The message's file, its thumbnail, and the message it answers.
    static let joins: SQLQueryString = """
        LEFT JOIN files f ON f.id = m.file_id LEFT JOIN files t ON t.parent_id = m.file_id
        LEFT JOIN messages r ON r.chat_id = m.chat_id AND r.seq = m.reply_to_seq
        """

    init(
        id: String,
        chatID: String,
        seq: Int64,
        senderID: String,
        kind: String,
        text: String?,
        fileID: String?,
        clientMessageID: String?,
        createdAt: Int64,
        file: FileRecord?,
        version: Int64 = 0,
        replyToSeq: Int64? = nil,
        replyTo: ReplyPreview? = nil,
        mentions: [String] = [],
        system: SystemEvent? = nil,
        hiddenFrom: String? = nil
    ) {
        self.id = id
        self.chatID = chatID
        self.seq = seq
        self.senderID = senderID
        self.kind = kind
        self.text = text
        self.fileID = fileID
        self.clientMessageID = clientMessageID
        self.createdAt = createdAt
        self.file = file
        self.version = version
        self.changedAt = createdAt
        self.editedAt = nil
        self.replyToSeq = replyToSeq
        self.replyTo = replyTo
        self.reactions = []
        self.mentions = mentions
        self.system = system
        self.hiddenFrom = hiddenFrom
    }

    init(row: any SQLRow) throws {
        self.id = try row.decode(column: "id", as: String.self)
        self.chatID = try row.decode(column: "chat_id", as: String.self)
        self.seq = try row.decode(column: "seq", as: Int64.self)
        self.senderID = try row.decode(column: "sender_id", as: String.self)
        self.kind = try row.decode(column: "kind", as: String.self)
        self.text = try row.decode(column: "text", as: String?.self)
        self.fileID = try row.decode(column: "file_id", as: String?.self)
        self.clientMessageID = try row.decode(column: "client_message_id", as: String?.self)
        self.createdAt = try row.decode(column: "created_at", as: Int64.self)
        if let fileID = self.fileID, let contentType = try row.decode(column: "f_content_type", as: String?.self) {
            self.file = FileRecord(
                id: fileID,
                contentType: contentType,
                size: try row.decode(column: "f_size", as: Int64.self),
                width: try row.decode(column: "f_width", as: Int?.self),
                height: try row.decode(column: "f_height", as: Int?.self),
                kind: FileRecord.Kind(rawValue: try row.decode(column: "f_kind", as: String.self)) ?? .file,
                name: try row.decode(column: "f_name", as: String?.self),
                thumbnailID: try row.decode(column: "t_id", as: String?.self)
            )
        }
        self.version = try row.decode(column: "version", as: Int64.self)
        self.changedAt = try row.decode(column: "changed_at", as: Int64.self)
        self.editedAt = try row.decode(column: "edited_at", as: Int64?.self)
        self.replyToSeq = try row.decode(column: "reply_to_seq", as: Int64?.self)
        if let replyToSeq = self.replyToSeq, let kind = try row.decode(column: "r_kind", as: String?.self) {
            self.replyTo = ReplyPreview(
                seq: replyToSeq,
                senderId: try row.decode(column: "r_sender_id", as: String.self),
                kind: kind,
                text: ReplyPreview.snippet(of: try row.decode(column: "r_text", as: String?.self))
            )
            self.replyHiddenFrom = try row.decode(column: "r_hidden_from", as: String?.self)
            self.replyKept = try KeptView(column: try row.decode(column: "r_kept_view", as: String?.self))
        }
        self.reactions = try Self.reactions(from: try row.decode(column: "reactions", as: String?.self))
        self.mentions = (try row.decode(column: "mentions", as: String?.self) ?? "").split(separator: " ").map(String.init)
        self.system = try (try row.decode(column: "system", as: String?.self)).map { try JSONDecoder().decode(SystemEvent.self, from: Data($0.utf8)) }
        self.hiddenFrom = try row.decode(column: "hidden_from", as: String?.self)
        self.kept = try KeptView(column: try row.decode(column: "kept_view", as: String?.self))
    }

    /// Makes this message its tombstone: kind `deleted`, with nothing of what it said, carried or answered.
    mutating func erase() {
        self.kind = "deleted"
        self.text = nil
        self.fileID = nil
        self.file = nil
        self.editedAt = nil
        self.replyToSeq = nil
        self.replyTo = nil
        self.reactions = []
        self.mentions = []
        self.kept = nil
    }

    /// This message as `viewer` may see it: what a person they block wrote to them reads as a tombstone (its seq and
    /// version keep the timeline dense), and so does a reply's preview of it; what that person changed of a message
    /// `viewer` had seen reads as it was before.
    func seen(by viewer: String) -> MessageRecord {
        var seen = self
        if self.hiddenFrom == viewer {
            seen.erase()
            // The writer's idempotency key is theirs alone too.
            seen.clientMessageID = nil
            return seen
        }
        if let kept = self.kept, kept.viewer == viewer { seen = kept.applied(to: self) }
        seen.kept = nil
        if self.replyHiddenFrom == viewer, let reply = self.replyTo {
            seen.replyTo = ReplyPreview(seq: reply.seq, senderId: reply.senderId, kind: "deleted", text: nil)
        } else if let kept = self.replyKept, kept.viewer == viewer, let reply = self.replyTo {
            seen.replyTo = ReplyPreview(seq: reply.seq, senderId: reply.senderId, kind: reply.kind, text: ReplyPreview.snippet(of: kept.text))
        }
        seen.replyKept = nil
        return seen
    }

    /// Whether `viewer`'s view of this message changed with its latest change: not when the person they block changed
    /// what they see, which is kept from them as it was.
    func changedFor(_ viewer: String) -> Bool {
        guard let kept = self.kept, kept.viewer == viewer else { return true }
        return kept.version == self.version
    }

    /// The mentions that count: the text's, and the blocker's in the view kept for them.
    var countedMentions: [String] {
        guard let kept = self.kept, kept.mentions.contains(kept.viewer), !self.mentions.contains(kept.viewer) else { return self.mentions }
        return self.mentions + [kept.viewer]
    }

    /// The client's view, with signed file URLs.
    func message(signer: FileURLSigner) -> Message {
        Message(
            id: self.id,
            chatId: self.chatID,
            seq: self.seq,
            senderId: self.senderID,
            kind: self.kind,
            text: self.text,
            image: self.file.flatMap { $0.isInline ? MessageImage(file: $0, signer: signer) : nil },
            file: self.file.flatMap { $0.isInline ? nil : MessageFile(file: $0, signer: signer) },
            clientMessageId: self.clientMessageID,
            createdAt: Timestamp.iso8601(millis: self.createdAt),
            version: self.version,
            editedAt: self.editedAt.map { Timestamp.iso8601(millis: $0) },
            replyTo: self.replyTo,
            reactions: self.reactions,
            mentions: self.mentions,
            system: self.system
        )
    }

    /// What a reply to this message shows of it.
    var preview: ReplyPreview {
        ReplyPreview(seq: self.seq, senderId: self.senderID, kind: self.kind, text: ReplyPreview.snippet(of: self.text))
    }

    /// The `reactions` column: JSON in the API's shape, NULL for none.
    static func reactions(from column: String?) throws -> [Reaction] {
        guard let column else { return [] }
        return try JSONDecoder().decode([Reaction].self, from: Data(column.utf8))
    }

    var reactionsColumn: String? {
        self.reactions.isEmpty ? nil : ParleyJSON.text(self.reactions)
    }

    var systemColumn: String? {
        self.system.map { ParleyJSON.text($0) }
    }

    var keptColumn: String? {
        self.kept.map { ParleyJSON.text($0) }
    }

    var mentionsColumn: String? {
        self.mentions.isEmpty ? nil : self.mentions.joined(separator: " ")
    }
}

extension ReplyPreview {
    /// The start of `text`, at most ``maxText`` characters.
    static func snippet(of text: String?) -> String? {
        guard let text else { return nil }
        return text.count <= Self.maxText ? text : String(text.prefix(Self.maxText))
    }
}

extension MessageImage {
    /// The client's view of `file`, with signed URLs. An image that fits a thumbnail's bounds is its own thumbnail; one
    /// the server could not make a thumbnail of (no libvips) has none.
    init(file: FileRecord, signer: FileURLSigner) {
        let url = signer.url(forFile: file.id)
        let fits = (file.width ?? .max) <= Thumbnailer.maxSide && (file.height ?? .max) <= Thumbnailer.maxSide
        self.init(
            url: url,
            thumbnailUrl: file.thumbnailID.map { signer.url(forFile: $0) } ?? (fits ? url : nil),
            contentType: file.contentType,
            size: Int(file.size),
            width: file.width,
            height: file.height
        )
    }
}

extension MessageFile {
    /// The client's view of `file`, with a signed URL.
    init(file: FileRecord, signer: FileURLSigner) {
        self.init(url: signer.url(forFile: file.id), name: file.name ?? "file", contentType: file.contentType, size: Int(file.size))
    }
}

extension UploadedFile {
    /// The uploader's view of `file`, with a signed URL.
    init(file: FileRecord, signer: FileURLSigner) {
        self.init(
            id: file.id,
            url: signer.url(forFile: file.id),
            contentType: file.contentType,
            size: Int(file.size),
            width: file.width,
            height: file.height
        )
    }
}

/// A chat row with the caller's membership.
struct ChatRecord: Sendable {
    var id: String
    var kind: String
    var name: String?
    var avatarFileID: String?
    var lastSeq: Int64
    var updatedAt: Int64
    var version: Int64

    static let columns: SQLQueryString = "c.id, c.kind, c.name, c.avatar_file_id, c.last_seq, c.updated_at, c.version"

    init(row: any SQLRow) throws {
        self.id = try row.decode(column: "id", as: String.self)
        self.kind = try row.decode(column: "kind", as: String.self)
        self.name = try row.decode(column: "name", as: String?.self)
        self.avatarFileID = try row.decode(column: "avatar_file_id", as: String?.self)
        self.lastSeq = try row.decode(column: "last_seq", as: Int64.self)
        self.updatedAt = try row.decode(column: "updated_at", as: Int64.self)
        self.version = try row.decode(column: "version", as: Int64.self)
    }
}

/// A member of a chat, their read pointer and their role.
struct MemberRecord: Sendable {
    var chatID: String
    var userID: String
    var lastReadSeq: Int64
    var role: GroupRole = .member
}

/// A message as the one who blocks its changer last saw it (`MessageRecord.kept`).
struct KeptView: Sendable, Equatable, Codable {
    /// The blocker, who sees this.
    var viewer: String
    /// The chat's version when this view last changed.
    var version: Int64
    var text: String?
    var editedAt: Int64?
    var mentions: [String]
    var reactions: [Reaction]

    init(viewer: String, of record: MessageRecord) {
        self.viewer = viewer
        self.version = record.version
        self.text = record.text
        self.editedAt = record.editedAt
        self.mentions = record.mentions
        self.reactions = record.reactions
    }

    /// The `kept_view` column: JSON, NULL for none.
    init?(column: String?) throws {
        guard let column else { return nil }
        self = try JSONDecoder().decode(Self.self, from: Data(column.utf8))
    }

    /// `record` with this view's contents in place of its own.
    func applied(to record: MessageRecord) -> MessageRecord {
        var view = record
        view.text = self.text
        view.editedAt = self.editedAt
        view.mentions = self.mentions
        view.reactions = self.reactions
        view.kept = nil
        return view
    }
}
