import Foundation
import HTTPTypes
public import Hummingbird
import MultipartKit
import NIOCore
public import ParleyCore
import ParleyStore

/// The chat service's HTTP routes: each parses its request, asks the service, and shapes the answer.
public struct ChatController: Sendable {
    let service: ChatService
    let verifier: any AccessTokenVerifying

    /// Serves `service`, authenticating with `verifier`.
    /// The downloads this instance streams at once.
    let downloads: DownloadSlots

    public init(service: ChatService, verifier: any AccessTokenVerifying, downloads: DownloadSlots = DownloadSlots(limit: 128)) {
        self.service = service
        self.verifier = verifier
        self.downloads = downloads
    }

    /// Adds the routes under `/api/v1`.
    public func addRoutes(to router: Router<ParleyRequestContext>) {
        let api = router.group("api/v1")
        // Files are fetched by <img src>, which sends no token: the signed URL is the permission.
        api.get("files/:id", use: self.file)
        let authenticated = api.group().add(middleware: AuthenticationMiddleware(verifier: self.verifier))
        authenticated.post("files", use: self.upload)
        authenticated.post("chats", use: self.createChat)
        authenticated.get("chats", use: self.listChats)
        authenticated.get("chats/:id", use: self.chat)
        authenticated.get("chats/:id/messages", use: self.messages)
        authenticated.post("chats/:id/messages", use: self.send)
        authenticated.patch("chats/:id/messages/:seq", use: self.edit)
        authenticated.delete("chats/:id/messages/:seq", use: self.delete)
        authenticated.put("chats/:id/messages/:seq/reactions/:emoji", use: self.addReaction)
        authenticated.delete("chats/:id/messages/:seq/reactions/:emoji", use: self.removeReaction)
        authenticated.get("chats/:id/changes", use: self.changes)
        authenticated.post("chats/:id/read", use: self.read)
        authenticated.get("search", use: self.search)
        self.addGroupRoutes(to: authenticated)
    }

    @Sendable func createChat(request: Request, context: ParleyRequestContext) async throws -> EditedResponse<ChatEnvelope> {
        let userID = try context.requireUserID()
        let body = try await request.decodeJSON(as: CreateChatRequest.self, context: context)
        switch (body.userId, body.name, body.memberIds) {
        case (let other?, nil, nil):
            let (summary, created) = try await self.service.openDirect(userID: userID, with: other)
            return .init(status: created ? .created : .ok, response: ChatEnvelope(chat: summary))
        case (nil, let name?, let members?):
            let summary = try await self.service.createGroup(userID: userID, name: name, memberIDs: members)
            return .init(status: .created, response: ChatEnvelope(chat: summary))
        default:
            throw APIError.badRequest("Send {\"userId\"} for a direct chat or {\"name\", \"memberIds\"} for a group.", code: "invalid_chat")
        }
    }

    /// An image of one's own, outside any chat (an avatar): `PATCH /me {"avatarFileId"}` uses it.
    @Sendable func upload(request: Request, context: ParleyRequestContext) async throws -> EditedResponse<FileEnvelope> {
        let userID = try context.requireUserID()
        guard request.headers[.contentType]?.lowercased().hasPrefix("multipart/form-data") == true else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "Send the image as multipart/form-data.")
        }
        let form = try await MultipartForm.read(request, limit: self.service.maxUploadBytes + 64 * 1024)
        guard let image = form.files["image"] else {
            throw APIError.badRequest("Send the image in a file field named `image`.", code: "invalid_multipart")
        }
        try self.service.limits.take(.upload, userID: userID)
        let record = try await self.service.store(Upload(bytes: image.bytes, field: .image, name: image.filename), owner: userID)
        return .init(status: .created, response: FileEnvelope(file: UploadedFile(file: record, signer: self.service.signer)))
    }

    @Sendable func listChats(request: Request, context: ParleyRequestContext) async throws -> ChatPage {
        let userID = try context.requireUserID()
        let limit = try Pagination.limit(request.uri.queryParameters.get("limit"))
        let cursor = try request.uri.queryParameters.get("cursor").map { try OpaqueCursor.decode($0, as: ChatCursor.self) }
        let (chats, next) = try await self.service.chats(of: userID, after: cursor, limit: limit)
        return ChatPage(chats: chats, nextCursor: next.map { OpaqueCursor.encode($0) })
    }

    @Sendable func chat(request: Request, context: ParleyRequestContext) async throws -> ChatSummary {
        try await self.service.summary(of: try context.parameters.require("id"), for: try context.requireUserID())
    }

    @Sendable func messages(request: Request, context: ParleyRequestContext) async throws -> Response {
        let userID = try context.requireUserID()
        let chatID = try context.parameters.require("id")
        let query = request.uri.queryParameters
        let limit = try Pagination.limit(query.get("limit"))
        let before = try Self.seqParameter(query.get("before"), name: "before")
        let after = try Self.seqParameter(query.get("after"), name: "after")
        if let around = try Self.seqParameter(query.get("around"), name: "around") {
            guard before == nil, after == nil else {
                throw APIError.badRequest("`around` cannot be combined with `before` or `after`.", code: "invalid_request")
            }
            let page = try await self.service.messages(in: chatID, for: userID, around: around, limit: limit)
            return try page.response(from: request, context: context)
        }
        let (messages, hasMore) = try await self.service.messages(in: chatID, for: userID, before: before, after: after, limit: limit)
        return try MessagePage(messages: messages, hasMore: hasMore).response(from: request, context: context)
    }

    @Sendable func edit(request: Request, context: ParleyRequestContext) async throws -> MessageEnvelope {
        let body = try await request.decodeJSON(as: EditMessageRequest.self, context: context)
        return try await self.change(ChatService.editAction(text: body.text), context: context)
    }

    @Sendable func delete(request: Request, context: ParleyRequestContext) async throws -> MessageEnvelope {
        try await self.change(.delete, context: context)
    }

    @Sendable func addReaction(request: Request, context: ParleyRequestContext) async throws -> MessageEnvelope {
        try await self.change(try Self.reactAction(on: true, context: context), context: context)
    }

    @Sendable func removeReaction(request: Request, context: ParleyRequestContext) async throws -> MessageEnvelope {
        try await self.change(try Self.reactAction(on: false, context: context), context: context)
    }

    /// Carries out `action` on the message the path names, as the caller.
    func change(_ action: ChatStore.MessageChange.Action, context: ParleyRequestContext) async throws -> MessageEnvelope {
        let userID = try context.requireUserID()
        let chatID = try context.parameters.require("id")
        return MessageEnvelope(message: try await self.service.change(chatID: chatID, seq: try Self.seq(context), userID: userID, action: action))
    }

    /// The reaction the path names, validated.
    static func reactAction(on: Bool, context: ParleyRequestContext) throws -> ChatStore.MessageChange.Action {
        // Path parameters arrive as sent: the emoji is percent-encoded UTF-8.
        guard let emoji = try context.parameters.require("emoji").removingPercentEncoding else { throw ChatError.invalidEmoji }
        return try ChatService.reactAction(emoji: emoji, on: on)
    }

    @Sendable func changes(request: Request, context: ParleyRequestContext) async throws -> ChangePage {
        let userID = try context.requireUserID()
        let query = request.uri.queryParameters
        let limit = try Pagination.limit(query.get("limit"))
        let after = try Self.seqParameter(query.get("after"), name: "after") ?? 0
        return try await self.service.changes(in: try context.parameters.require("id"), for: userID, after: after, limit: limit)
    }

    @Sendable func search(request: Request, context: ParleyRequestContext) async throws -> SearchPage {
        let userID = try context.requireUserID()
        let query = request.uri.queryParameters
        let limit = try Pagination.limit(query.get("limit"))
        guard let text = query.get("q") else { throw ChatError.invalidQuery("`q` is required.") }
        let cursor = try query.get("cursor").map { try OpaqueCursor.decode($0, as: ChatStore.SearchCursor.self) }
        let (results, next) = try await self.service.search(query: text, userID: userID, chatID: query.get("chatId"), after: cursor, limit: limit)
        return SearchPage(results: results, nextCursor: next.map { OpaqueCursor.encode($0) })
    }

    /// The `seq` path parameter: a message's place in its chat.
    static func seq(_ context: ParleyRequestContext) throws -> Int64 {
        guard let seq = try Self.seqParameter(context.parameters.require("seq"), name: "seq") else { throw ChatError.invalidSeq }
        return seq
    }

    @Sendable func send(request: Request, context: ParleyRequestContext) async throws -> EditedResponse<MessageEnvelope> {
        let userID = try context.requireUserID()
        let chatID = try context.parameters.require("id")
        let contentType = request.headers[.contentType] ?? ""
        let text: String?
        let clientMessageID: String?
        var replyToSeq: Int64?
        var upload: Upload?
        if contentType.lowercased().hasPrefix("multipart/form-data") {
            let form = try await MultipartForm.read(request, limit: max(self.service.maxUploadBytes, self.service.maxFileBytes) + 64 * 1024)
            text = form.fields["text"]
            clientMessageID = form.fields["clientMessageId"]
            switch (form.files["image"], form.files["file"]) {
            case (let image?, nil): upload = Upload(bytes: image.bytes, field: .image, name: image.filename)
            case (nil, let file?): upload = Upload(bytes: file.bytes, field: .file, name: file.filename)
            case (nil, nil): upload = nil
            case (_?, _?): throw APIError.badRequest("Send an `image` or a `file`, not both.", code: "invalid_multipart")
            }
            replyToSeq = try Self.seqParameter(form.fields["replyToSeq"], name: "replyToSeq")
            guard upload != nil || text != nil else {
                throw APIError.badRequest("Send a `text` field, an `image` or a `file`.", code: "invalid_text")
            }
        } else {
            let body = try await request.decodeJSON(as: SendMessageRequest.self, context: context)
            text = body.text
            clientMessageID = body.clientMessageId
            replyToSeq = body.replyToSeq
        }
        let (message, created) = try await self.service.send(
            chatID: chatID,
            userID: userID,
            text: text,
            upload: upload,
            clientMessageID: clientMessageID,
            replyToSeq: replyToSeq
        )
        return .init(status: created ? .created : .ok, response: MessageEnvelope(message: message))
    }

    @Sendable func read(request: Request, context: ParleyRequestContext) async throws -> Response {
        let userID = try context.requireUserID()
        let body = try await request.decodeJSON(as: ReadRequest.self, context: context)
        try await self.service.markRead(chatID: try context.parameters.require("id"), userID: userID, seq: body.seq)
        return Response(status: .noContent)
    }

    @Sendable func file(request: Request, context: ParleyRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let query = request.uri.queryParameters
        guard Identifier.isValid(id), let expires = query.get("exp").flatMap({ Int64($0) }), let signature = query.get("sig"),
            self.service.signer.verify(fileID: id, expires: expires, signature: signature)
        else {
            throw ChatError.fileNotFound
        }
        let record = try await self.service.file(id)
        let size = Int(record.size)
        let tag = "\"\(id)\""
        var headers = HTTPFields()
        headers[.contentType] = record.contentType
        headers[.cacheControl] = "private, max-age=3600"
        headers[.eTag] = tag
        headers[.acceptRanges] = "bytes"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        // Opened on its own (not as an <img>), a file runs nothing and loads nothing.
        headers[.contentSecurityPolicy] = "sandbox; default-src 'none'"
        // Anything but an image (checked by its bytes) is downloaded, never shown by the browser, under its uploader's name.
        if !record.isInline {
            headers[.contentDisposition] = FileName.contentDisposition("attachment", name: record.name ?? "file")
        } else if let name = record.name {
            headers[.contentDisposition] = FileName.contentDisposition("inline", name: name)
        }
        // A file never changes (every upload has a fresh id): a copy the client holds is current.
        if let tags = request.headers[.ifNoneMatch], tags == "*" || tags.split(separator: ",").contains(where: { ByteRange.sameTag($0, tag) }) {
            return Response(status: .notModified, headers: headers)
        }
        guard size > 0 else { return Response(status: .ok, headers: headers, body: .init()) }
        var range = 0...(size - 1)
        var status = HTTPResponse.Status.ok
        // One range, as video players and resumed downloads ask (several, or a malformed one: the whole file).
        if let header = request.headers[.range], request.headers[.ifRange].map({ ByteRange.sameTag(Substring($0), tag) }) ?? true {
            switch ByteRange(header, size: size) {
            case .whole:
                break
            case .part(let part):
                (status, range) = (.partialContent, part)
                headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound)/\(size)"
            case .unsatisfiable:
                throw APIError(
                    .rangeNotSatisfiable,
                    code: "range_not_satisfiable",
                    message: "The file has \(size) bytes.",
                    headers: [.contentRange: "bytes */\(size)"]
                )
            }
        }
        let slot = try self.downloads.take()
        let eventLoop = context.eventLoop
        let body = try await self.service.blobs.stream(key: id, range: range, context: context)
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(contentLength: range.count) { writer in
                // Given back once written or failed; a body never written gives it back when it is dropped.
                defer { slot.release() }
                try await body.write(PacedBodyWriter(inner: writer, eventLoop: eventLoop))
            }
        )
    }

    static func seqParameter(_ raw: String?, name: String) throws -> Int64? {
        guard let raw else { return nil }
        guard let value = Int64(raw), value >= 0 else {
            throw APIError.badRequest("`\(name)` must be a non-negative whole number.", code: "invalid_seq")
        }
        return value
    }
}

/// The position after the last chat of a page: its last activity and id.
struct ChatCursor: Codable {
    var u: Int64
    var i: String
}

/// A multipart/form-data body read whole (up to a limit): text fields and file parts.
struct MultipartForm {
    /// A file part: its bytes and the file name it was sent with.
    struct File {
        var bytes: [UInt8]
        var filename: String?
    }

    var fields: [String: String] = [:]
    var files: [String: File] = [:]

    static func read(_ request: Request, limit: Int) async throws -> MultipartForm {
        guard let contentType = request.headers[.contentType], let boundary = Self.boundary(in: contentType) else {
            throw APIError.badRequest("The multipart body has no boundary.", code: "invalid_multipart")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, code: "file_too_large", message: "The upload is too large.")
        }
        guard Self.headerNamesAreASCII(body, boundary: boundary) else {
            throw APIError.badRequest("The multipart body is malformed.", code: "invalid_multipart")
        }
        var form = MultipartForm()
        var name: String?
        var isFile = false
        var filename: String?
        var current: [UInt8] = []
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { field, value in
            guard field.lowercased() == "content-disposition" else { return }
            name = Self.parameters(in: value)["name"]
            filename = Self.filename(in: value)
            isFile = filename != nil
        }
        parser.onBody = { buffer in
            current += buffer.readBytes(length: buffer.readableBytes) ?? []
        }
        parser.onPartComplete = {
            if let name {
                if isFile {
                    form.files[name] = File(bytes: current, filename: filename)
                } else {
                    form.fields[name] = String(decoding: current, as: UTF8.self)
                }
            }
            name = nil
            isFile = false
            filename = nil
            current = []
        }
        do {
            try parser.execute(body)
        } catch {
            throw APIError.badRequest("The multipart body is malformed.", code: "invalid_multipart")
        }
        return form
    }

    static func boundary(in contentType: String) -> String? {
        Self.parameter("boundary", in: contentType).flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 }
    }

    static func parameter(_ name: String, in header: String) -> String? {
        for part in header.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == name else { continue }
            var value = pair[1]
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }
}
