import Foundation
import ParleyCore
package import ParleyStore
package import SQLKit

/// An upload as its sender sent it: the bytes, which multipart field they came in, and the file name they gave.
struct Upload: Sendable {
    /// The multipart field: `image` (checked to be one) or `file` (anything).
    enum Field: Sendable {
        case image, file
    }

    var bytes: [UInt8]
    var field: Field
    var name: String?
}

/// Those of some people who refuse to be added to groups, read in the caller's database transaction.
package typealias GroupAddRefusals = @Sendable ([String], any SQLDatabase) async throws -> Set<String>

/// The chat service: chats, messages, read state, files; every change is published on the event bus. Refusals are
/// thrown as ``ChatError``.
public struct ChatService: Sendable {
    let store: ChatStore
    let files: FileStore
    let blobs: any BlobStore
    let signer: FileURLSigner
    let bus: any ChatEventBus
    let membership: MembershipCache
    /// Stores every send; a `Service` the process runs (see ``MessageWriter``).
    public let writer: MessageWriter
    let directory: any UserDirectory
    /// The largest image, and the largest file of any other kind.
    let maxUploadBytes: Int
    let maxFileBytes: Int
    /// Makes images' previews (none without libvips).
    public let thumbnailer: Thumbnailer
    /// What one user's files may take in all; 0: no quota.
    let storageQuotaBytes: Int
    /// What one user may do how often (sends and changes, new groups, images; typing is counted by the socket's router).
    let limits: UserRateLimits
    /// Who of some people turned group adds off (a setting the user service keeps).
    let groupAddRefusals: GroupAddRefusals

    /// Creates the service over `database`; profiles come from `directory`.
    package init(
        database: Database,
        directory: any UserDirectory,
        blobs: any BlobStore,
        signer: FileURLSigner,
        bus: any ChatEventBus,
        maxUploadBytes: Int,
        maxFileBytes: Int = 25 * 1024 * 1024,
        storageQuotaBytes: Int = 0,
        limits: UserRateLimits = .unlimited,
        thumbnailer: Thumbnailer = .onPath(),
        groupAddRefusals: @escaping GroupAddRefusals = { _, _ in [] }
    ) {
        self.groupAddRefusals = groupAddRefusals
        self.store = ChatStore(database: database)
        self.files = FileStore(database: database)
        self.directory = directory
        self.blobs = blobs
        self.signer = signer
        self.bus = bus
        self.membership = MembershipCache(store: self.store)
        self.writer = MessageWriter(store: self.store) { outcome in
            switch outcome {
            case .created(let record):
                bus.publish(.newMessage(record))
            case .changed(let record, let erasedFiles):
                bus.publish(.messageUpdated(record))
                // Erased once the deletion is committed: a rollback never loses the bytes of a message still there.
                for key in erasedFiles { try? await blobs.delete(key: key) }
            case .duplicate, .unchanged, .notMember, .refused:
                break
            }
        }
        self.maxUploadBytes = maxUploadBytes
        self.maxFileBytes = maxFileBytes
        self.thumbnailer = thumbnailer
        self.storageQuotaBytes = storageQuotaBytes
        self.limits = limits
    }

    static let maxTextLength = 4000
    static let maxGroupMembers = 1000

    /// Opens (or finds) a direct chat with `otherID`.
    func openDirect(userID: String, with otherID: String) async throws -> (ChatSummary, created: Bool) {
        guard Identifier.isValid(otherID) else { throw ChatError.userNotFound }
        guard otherID != userID else { throw ChatError.invalidMembers("A chat with yourself is not possible.") }
        guard try await self.directory.profiles(of: [otherID])[otherID] != nil else { throw ChatError.userNotFound }
        // A block either way: the chat they had stays. The blocker opens no new one; the person they block opens one as
        // if nothing stood between them, which the blocker does not see (not listed, not announced) until they unblock.
        if try await self.store.isBlocked(between: userID, and: otherID) {
            if let id = try await self.store.directChat(between: userID, and: otherID) {
                return (try await self.summary(of: id, for: userID), false)
            }
            guard try await !self.store.blocks(of: userID).contains(otherID) else { throw ChatError.userUnreachable }
            let (id, created) = try await self.store.direct(between: userID, and: otherID, now: Timestamp.millis())
            self.membership.remember(id, members: [userID, otherID])
            return (try await self.summary(of: id, for: userID), created)
        }
        let (id, created) = try await self.store.direct(between: userID, and: otherID, now: Timestamp.millis())
        let members = [userID, otherID]
        self.membership.remember(id, members: members)
        let summary = try await self.summary(of: id, for: userID)
        // A new chat has nothing unread for anyone, so every member sees the same summary.
        if created { self.bus.publish(.chatUpdated(summary)) }
        return (summary, created)
    }

    /// Creates a group chat named `name` with `memberIDs` and the caller.
    func createGroup(userID: String, name rawName: String, memberIDs: [String]) async throws -> ChatSummary {
        let name = try Self.validateGroupName(rawName)
        var members = [userID]
        for id in memberIDs where !members.contains(id) {
            guard Identifier.isValid(id) else { throw ChatError.memberNotFound(String(id.prefix(40))) }
            members.append(id)
        }
        guard members.count >= 2 else { throw ChatError.invalidMembers("A group needs at least one other member.") }
        guard members.count <= Self.maxGroupMembers else { throw ChatError.invalidMembers("A group has at most \(Self.maxGroupMembers) members.") }
        try self.limits.take(.group, userID: userID)
        let existing = try await self.directory.profiles(of: members)
        if let missing = members.first(where: { existing[$0] == nil }) { throw ChatError.memberNotFound(missing) }
        try await self.requireReachable(Array(members.dropFirst()), from: userID, profiles: existing)
        let id = try await self.store.group(named: name, creator: userID, members: members, now: Timestamp.millis())
        self.membership.remember(id, members: members)
        let summary = try await self.summary(of: id, for: userID)
        self.bus.publish(.chatUpdated(summary))
        return summary
    }

    /// One chat as `userID` sees it.
    func summary(of chatID: String, for userID: String) async throws -> ChatSummary {
        guard Identifier.isValid(chatID), let record = try await self.store.chat(chatID, visibleTo: userID) else { throw ChatError.chatNotFound }
        return try await self.summaries(of: [record], for: userID)[0]
    }

    /// A page of `userID`'s chats, newest activity first, after `cursor`; and the cursor of the next page if there is one.
    func chats(of userID: String, after cursor: ChatCursor?, limit: Int) async throws -> (chats: [ChatSummary], next: ChatCursor?) {
        let records = try await self.store.chats(of: userID, after: cursor.map { ($0.u, $0.i) }, limit: limit + 1)
        let page = Array(records.prefix(limit))
        let next = records.count > limit ? page.last.map { ChatCursor(u: $0.updatedAt, i: $0.id) } : nil
        return (try await self.summaries(of: page, for: userID), next)
    }

    /// A page of a chat's messages in ascending seq (see ``ChatStore/messages(in:before:after:limit:)``), for a member only.
    func messages(
        in chatID: String,
        for userID: String,
        before: Int64?,
        after: Int64?,
        limit: Int
    ) async throws -> (messages: [Message], hasMore: Bool) {
        guard Identifier.isValid(chatID), try await self.store.isMember(userID, of: chatID) else { throw ChatError.chatNotFound }
        let (records, hasMore) = try await self.store.messages(in: chatID, before: before, after: after, limit: limit)
        return (records.map { $0.seen(by: userID).message(signer: self.signer) }, hasMore)
    }

    /// Summaries of `records` for `userID`: a fixed number of queries, whatever the number of chats.
    func summaries(of records: [ChatRecord], for userID: String) async throws -> [ChatSummary] {
        let ids = records.map(\.id)
        async let membersQuery = self.store.members(of: ids)
        async let lastQuery = self.store.lastMessages(of: records)
        async let mentionsQuery = self.store.mentionCounts(of: userID, in: ids)
        async let hiddenQuery = self.store.hiddenCounts(of: userID, in: ids)
        let members = Dictionary(grouping: try await membersQuery, by: \.chatID)
        let last = try await lastQuery
        let mentions = try await mentionsQuery
        let hidden = try await hiddenQuery
        let profiles = try await self.directory.profiles(of: Array(Set(members.values.joined().map(\.userID))))
        return records.map { record in
            let chatMembers = members[record.id] ?? []
            let myRead = chatMembers.first { $0.userID == userID }?.lastReadSeq ?? 0
            return ChatSummary(
                id: record.id,
                kind: record.kind,
                name: record.name,
                avatarUrl: record.avatarFileID.map { self.signer.url(forFile: $0) },
                members: chatMembers.map { member in
                    let profile = profiles[member.userID]
                    return ChatMember(id: member.userID, name: profile?.name ?? "", avatarUrl: profile?.avatarUrl, role: member.role.rawValue)
                },
                lastMessage: last[record.id].map { $0.seen(by: userID).message(signer: self.signer) },
                unreadCount: max(0, record.lastSeq - myRead - (hidden[record.id] ?? 0)),
                readState: chatMembers.map { ReadState(userId: $0.userID, lastReadSeq: $0.lastReadSeq) },
                updatedAt: Timestamp.iso8601(millis: record.updatedAt),
                version: record.version,
                mentionCount: mentions[record.id] ?? 0
            )
        }
    }

    /// Sends a message: stored with the chat's next seq, then published to every member.
    func send(
        chatID: String,
        userID: String,
        text rawText: String?,
        upload: Upload?,
        clientMessageID: String?,
        replyToSeq: Int64? = nil
    ) async throws -> (Message, created: Bool) {
        let text = try Self.validateSend(chatID: chatID, text: rawText, hasAttachment: upload != nil, clientMessageID: clientMessageID)
        if let replyToSeq, replyToSeq < 0 { throw ChatError.invalidSeq }
        try self.limits.take(.message, userID: userID)
        if upload != nil { try self.limits.take(.upload, userID: userID) }
        var file: FileRecord?
        if let upload {
            guard try await self.store.isMember(userID, of: chatID) else { throw ChatError.chatNotFound }
            // A retried upload answers the stored message before the bytes are stored a second time.
            if let clientMessageID, let stored = try await self.store.message(in: chatID, sentBy: userID, clientMessageID: clientMessageID) {
                return (stored.message(signer: self.signer), false)
            }
            file = try await self.store(upload, owner: userID)
        }
        let draft = ChatStore.MessageDraft(
            chatID: chatID,
            senderID: userID,
            text: text,
            file: file,
            clientMessageID: clientMessageID,
            replyToSeq: replyToSeq,
            mentionCandidates: MessageText.mentionCandidates(in: text),
            now: Timestamp.millis(),
            trace: ParleyTracing.current
        )
        return try await self.sent(await self.writer.submit(draft), for: userID)
    }

    /// Queues a text message and returns without waiting for it to be stored: messages a caller submits one after
    /// another get seqs in that order. ``sent(_:)`` tells what became of it.
    func submitText(
        chatID: String,
        userID: String,
        text rawText: String?,
        clientMessageID: String?,
        replyToSeq: Int64? = nil
    ) async throws -> PendingAppend {
        let text = try Self.validateSend(chatID: chatID, text: rawText, hasAttachment: false, clientMessageID: clientMessageID)
        if let replyToSeq, replyToSeq < 0 { throw ChatError.invalidSeq }
        try self.limits.take(.message, userID: userID)
        return await self.writer.submit(
            ChatStore.MessageDraft(
                chatID: chatID,
                senderID: userID,
                text: text,
                file: nil,
                clientMessageID: clientMessageID,
                replyToSeq: replyToSeq,
                mentionCandidates: MessageText.mentionCandidates(in: text),
                now: Timestamp.millis(),
                trace: ParleyTracing.current
            )
        )
    }

    /// The message a submitted send or change became, as its writer `userID` sees it, once stored with other writes of
    /// its moment in one transaction and published by the writer in version order.
    func sent(_ pending: PendingAppend, for userID: String) async throws -> (Message, created: Bool) {
        switch try await pending.outcome() {
        case .notMember:
            throw ChatError.chatNotFound
        case .refused(let error):
            throw error
        case .changed(let record, _), .unchanged(let record):
            return (record.seen(by: userID).message(signer: self.signer), false)
        case .duplicate(let record):
            // A retry after its first attempt's instance died between the commit and the NOTIFY: published again, so the
            // others hear of it now. Whoever had it drops it by its seq.
            self.bus.publish(.newMessage(record))
            return (record.seen(by: userID).message(signer: self.signer), false)
        case .created(let record):
            return (record.seen(by: userID).message(signer: self.signer), true)
        }
    }

    /// The checks every send passes before anything is stored; returns the text to store.
    static func validateSend(chatID: String, text: String?, hasAttachment: Bool, clientMessageID: String?) throws -> String? {
        guard Identifier.isValid(chatID) else { throw ChatError.chatNotFound }
        let text = try Self.validateText(text, hasAttachment: hasAttachment)
        if let clientMessageID {
            guard (1...100).contains(clientMessageID.utf8.count), clientMessageID.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ChatError.invalidClientMessageID
            }
        }
        return text
    }

    /// Moves the caller's read pointer forward and tells the chat.
    func markRead(chatID: String, userID: String, seq: Int64) async throws {
        guard Identifier.isValid(chatID) else { throw ChatError.chatNotFound }
        guard seq >= 0 else { throw ChatError.invalidSeq }
        guard try await self.store.isMember(userID, of: chatID) else { throw ChatError.chatNotFound }
        if let moved = try await self.store.markRead(chatID: chatID, userID: userID, seq: seq) {
            self.bus.publish(.messagesSeen(chatID: chatID, userID: userID, seq: moved))
        }
    }

    /// The answer to a chat that does not exist or that the caller is not in (never 403: existence does not leak).
    static let chatNotFound = ChatError.chatNotFound

    static func validateText(_ text: String?, hasAttachment: Bool) throws -> String? {
        guard let text, !text.isEmpty else {
            if hasAttachment { return nil }
            throw ChatError.invalidText("A message needs text or an image.")
        }
        // Characters as people count them, and bytes, since one character may carry any number of combining marks.
        guard text.count <= Self.maxTextLength, text.utf8.count <= 4 * Self.maxTextLength else {
            throw ChatError.textTooLong(maxLength: Self.maxTextLength)
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" && $0 != "\r" }) else {
            throw ChatError.invalidText("A message must not contain control characters.")
        }
        guard !text.allSatisfy(\.isWhitespace) || hasAttachment else {
            throw ChatError.invalidText("A message needs more than white space.")
        }
        return text.allSatisfy(\.isWhitespace) ? nil : text
    }

    /// Stores what `owner` uploaded, outside any chat until a message carries it: an image is checked by its bytes and
    /// dimensions and gets a thumbnail; any other file is typed by its bytes and named as its uploader named it,
    /// sanitised. Both count against the owner's storage quota (a thumbnail's few kilobytes too, once stored).
    func store(_ upload: Upload, owner: String) async throws -> FileRecord {
        let bytes = upload.bytes
        var record: FileRecord
        var thumbnail: (bytes: [UInt8], info: ImageInfo)?
        switch upload.field {
        case .image:
            guard bytes.count <= self.maxUploadBytes else { throw ChatError.imageTooLarge(maxBytes: self.maxUploadBytes) }
            guard let info = ImageInspector.inspect(bytes), info.width != nil, info.height != nil else { throw ChatError.unsupportedImage }
            // Before anything decodes it: a few kilobytes may declare gigabytes of pixels.
            guard ImageInspector.isDecodable(info, bytes: bytes) else {
                throw ChatError.imageDimensionsTooLarge(maxPixels: ImageInspector.maxPixels, maxSide: ImageInspector.maxSide)
            }
            try await self.checkQuota(adding: bytes.count, owner: owner)
            record = FileRecord(
                id: Identifier.make(),
                contentType: info.contentType,
                size: Int64(bytes.count),
                width: info.width,
                height: info.height,
                name: upload.name.map { FileName.sanitized($0, fallback: "image") }
            )
            if max(info.width ?? 0, info.height ?? 0) > Thumbnailer.maxSide {
                thumbnail = await self.thumbnailer.thumbnail(of: bytes)
            }
        case .file:
            guard bytes.count <= self.maxFileBytes else { throw ChatError.fileTooLarge(maxBytes: self.maxFileBytes) }
            try await self.checkQuota(adding: bytes.count, owner: owner)
            record = FileRecord(
                id: Identifier.make(),
                contentType: FileType.detect(bytes),
                size: Int64(bytes.count),
                width: nil,
                height: nil,
                kind: .file,
                name: FileName.sanitized(upload.name)
            )
        }
        let preview = thumbnail.map {
            FileRecord(
                id: Identifier.make(),
                contentType: $0.info.contentType,
                size: Int64($0.bytes.count),
                width: $0.info.width,
                height: $0.info.height,
                kind: .thumbnail
            )
        }
        record.thumbnailID = preview?.id
        try await self.blobs.put(bytes, key: record.id)
        do {
            if let preview, let thumbnail { try await self.blobs.put(thumbnail.bytes, key: preview.id) }
            try await self.files.insert(record, thumbnail: preview, ownerID: owner, now: Timestamp.millis())
        } catch {
            // Bytes without a row would wait for the sweep; erase them now.
            try? await self.blobs.delete(key: record.id)
            if let preview { try? await self.blobs.delete(key: preview.id) }
            throw error
        }
        return record
    }

    /// Refuses an upload of `size` bytes that would take `owner` past the storage quota.
    private func checkQuota(adding size: Int, owner: String) async throws {
        guard self.storageQuotaBytes > 0 else { return }
        // Checked before the bytes are stored; uploads running at once may each pass, by at most one file each.
        let used = try await self.files.usage(of: owner)
        guard used + Int64(size) <= Int64(self.storageQuotaBytes) else {
            throw ChatError.storageQuotaExceeded(quotaBytes: self.storageQuotaBytes, usedBytes: used)
        }
    }

    /// The stored facts of file `id`; the caller has checked the link's signature, which is the permission.
    func file(_ id: String) async throws -> FileRecord {
        guard let record = try await self.files.file(id) else { throw ChatError.fileNotFound }
        return record
    }
}
