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

    static let columns: SQLQueryString = """
        m.id, m.chat_id, m.seq, m.sender_id, m.kind, m.text, m.file_id, m.client_message_id, m.created_at,
        f.content_type AS f_content_type, f.size AS f_size, f.width AS f_width, f.height AS f_height
        """
    static let fileJoin: SQLQueryString = "LEFT JOIN files f ON f.id = m.file_id"

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
        file: FileRecord?
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
                height: try row.decode(column: "f_height", as: Int?.self)
            )
        }
    }

    /// The client's view, with a signed image URL.
    func message(signer: FileURLSigner) -> Message {
        Message(
            id: self.id,
            chatId: self.chatID,
            seq: self.seq,
            senderId: self.senderID,
            kind: self.kind,
            text: self.text,
            image: self.file.map { MessageImage(file: $0, signer: signer) },
            clientMessageId: self.clientMessageID,
            createdAt: Timestamp.iso8601(millis: self.createdAt)
        )
    }
}

extension MessageImage {
    /// The client's view of `file`, with a signed URL.
    init(file: FileRecord, signer: FileURLSigner) {
        self.init(url: signer.url(forFile: file.id), contentType: file.contentType, size: Int(file.size), width: file.width, height: file.height)
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
    var lastSeq: Int64
    var updatedAt: Int64

    static let columns: SQLQueryString = "c.id, c.kind, c.name, c.last_seq, c.updated_at"

    init(row: any SQLRow) throws {
        self.id = try row.decode(column: "id", as: String.self)
        self.kind = try row.decode(column: "kind", as: String.self)
        self.name = try row.decode(column: "name", as: String?.self)
        self.lastSeq = try row.decode(column: "last_seq", as: Int64.self)
        self.updatedAt = try row.decode(column: "updated_at", as: Int64.self)
    }
}

/// A member of a chat and their read pointer.
struct MemberRecord: Sendable {
    var chatID: String
    var userID: String
    var lastReadSeq: Int64
}
