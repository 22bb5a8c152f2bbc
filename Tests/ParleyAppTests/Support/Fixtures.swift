import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import ParleyCore
import ParleyTestSupport
import Testing

/// The `/api/v1` prefix of every contract route.
let api = "/api/v1"
/// A well-formed user or chat id that names nothing.
let unknownID = "0190f3a0-0000-7000-8000-000000000000"
let xss = "<script>alert(1)</script>"

/// A JSON object's text from Foundation values (strings, numbers, arrays, dictionaries, `NSNull()`).
func jsonText(_ object: [String: Any]) -> String {
    // A fixture's own values always serialise.
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}

/// `value` quoted as a JSON string.
func quoted(_ value: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
    return String(decoding: data, as: UTF8.self)
}

/// Whether two decoded JSON values are equal.
func sameJSON(_ lhs: Any?, _ rhs: Any?) -> Bool {
    switch (lhs, rhs) {
    case (nil, nil): true
    case (let lhs?, let rhs?): NSArray(array: [lhs]).isEqual(to: [rhs])
    default: false
    }
}

/// A query string (`?a=b&c=d`) with every value percent-encoded.
func query(_ pairs: KeyValuePairs<String, String>) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    let encoded = pairs.map { key, value in
        "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
    }
    return encoded.isEmpty ? "" : "?" + encoded.joined(separator: "&")
}

extension TestResponse {
    /// The body as text.
    var text: String { String(buffer: self.body) }

    /// The body's bytes.
    var bytes: [UInt8] { Array(buffer: self.body) }

    /// Checks that the answer carries the request id every answer has (`X-Request-Id`).
    func expectRequestID(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(self.headers[.requestID]?.isEmpty == false, "no X-Request-Id: \(self.headers)", sourceLocation: sourceLocation)
    }

    /// Checks `status` and returns the body as a JSON object.
    func expectJSON(_ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        self.expectRequestID(sourceLocation: sourceLocation)
        try #require(self.status == status, "expected \(status), got \(self.status): \(self.text.prefix(500))", sourceLocation: sourceLocation)
        #expect(self.headers[.contentType]?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
        return try self.json()
    }

    /// Checks a 204 with an empty body.
    func expectNoContent(sourceLocation: SourceLocation = #_sourceLocation) {
        self.expectRequestID(sourceLocation: sourceLocation)
        #expect(self.status == .noContent, "expected 204, got \(self.status): \(self.text.prefix(500))", sourceLocation: sourceLocation)
        #expect(self.body.readableBytes == 0, sourceLocation: sourceLocation)
    }

    /// Checks the contract's error shape with `status` and `code`, naming the case in `label` when it fails.
    func expectError(_ status: HTTPResponse.Status, code: String, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let actual = try self.errorCode(status, sourceLocation: sourceLocation)
        #expect(actual == code, "\(label): code \(actual ?? "none"), wanted \(code)", sourceLocation: sourceLocation)
    }

    /// The error code of an error answer after checking its status and shape (see ``expectError(_:code:sourceLocation:)``).
    func errorCode(_ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) throws -> String? {
        self.expectRequestID(sourceLocation: sourceLocation)
        #expect(self.status == status, "expected \(status), got \(self.status): \(self.text.prefix(500))", sourceLocation: sourceLocation)
        let body = try self.json()
        #expect(Set(body.keys) == ["error"], sourceLocation: sourceLocation)
        let error = try #require(body["error"] as? [String: Any], sourceLocation: sourceLocation)
        #expect(Set(error.keys) == ["code", "message"], sourceLocation: sourceLocation)
        #expect((error["message"] as? String)?.trimmingCharacters(in: .whitespaces).isEmpty == false, sourceLocation: sourceLocation)
        return error["code"] as? String
    }
}

extension TestApp {
    /// Signs in `count` people.
    func signIn(count: Int) async throws -> [Session] {
        var sessions: [Session] = []
        for _ in 0..<count { sessions.append(try await self.signIn()) }
        return sessions
    }

    /// Sends `body` as it is, labelled with `contentType` (none when nil), as `session` (or without a token).
    func request(
        _ method: HTTPRequest.Method,
        _ uri: String,
        as session: Session?,
        raw body: String,
        contentType: String? = "application/json"
    ) async throws -> TestResponse {
        var headers = session?.headers ?? [:]
        if let contentType { headers[.contentType] = contentType }
        return try await self.client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: body))
    }

    /// Sends a multipart form as `session`.
    func request(_ method: HTTPRequest.Method, _ uri: String, as session: Session?, form: MultipartBody) async throws -> TestResponse {
        var headers = session?.headers ?? [:]
        headers[.contentType] = form.contentType
        return try await self.client.execute(uri: uri, method: method, headers: headers, body: form.buffer)
    }

    /// Opens the direct chat of `session` with `other`, expecting `status` (201 or 200 when nil); returns the chat.
    @discardableResult
    func openDirect(
        _ session: Session,
        with other: Session,
        status: HTTPResponse.Status? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: Any] {
        let response = try await self.request(.post, "\(api)/chats", as: session, json: #"{"userId":\#(quoted(other.userID))}"#)
        if let status {
            try #require(response.status == status, "expected \(status), got \(response.status): \(response.text)", sourceLocation: sourceLocation)
        } else {
            try #require([.ok, .created].contains(response.status), "\(response.status): \(response.text)", sourceLocation: sourceLocation)
        }
        let body = try response.json()
        #expect(Set(body.keys) == ["chat"], sourceLocation: sourceLocation)
        let chat = try #require(body["chat"] as? [String: Any], sourceLocation: sourceLocation)
        try Shapes.expectChatSummary(chat, sourceLocation: sourceLocation)
        return chat
    }

    /// The id of the direct chat of `session` with `other`.
    func directChat(_ session: Session, with other: Session) async throws -> String {
        try #require(try await self.openDirect(session, with: other)["id"] as? String)
    }

    /// Opens a direct chat of `session` with each of `others` (if they have none): people one may add to a group.
    @discardableResult
    func introduce(_ session: Session, to others: [Session]) async throws -> [String] {
        var ids: [String] = []
        for other in others where other.userID != session.userID { ids.append(try await self.directChat(session, with: other)) }
        return ids
    }

    /// Creates a group named `name` by `session` with `members` (introduced to them first); returns the chat.
    @discardableResult
    func createGroup(
        _ session: Session,
        name: String,
        members: [Session],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: Any] {
        try await self.introduce(session, to: members)
        let json = jsonText(["name": name, "memberIds": members.map(\.userID)])
        let body = try await self.request(.post, "\(api)/chats", as: session, json: json).expectJSON(.created, sourceLocation: sourceLocation)
        #expect(Set(body.keys) == ["chat"], sourceLocation: sourceLocation)
        let chat = try #require(body["chat"] as? [String: Any], sourceLocation: sourceLocation)
        try Shapes.expectChatSummary(chat, sourceLocation: sourceLocation)
        return chat
    }

    /// Sends a text message as `session`, expecting `status`; returns the message.
    @discardableResult
    func send(
        _ session: Session,
        to chatID: String,
        _ text: String = "hello",
        clientMessageID: String? = nil,
        status: HTTPResponse.Status = .created,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: Any] {
        let json = jsonText(["text": text, "clientMessageId": clientMessageID ?? UUID().uuidString.lowercased()])
        let body = try await self.request(.post, "\(api)/chats/\(chatID)/messages", as: session, json: json)
            .expectJSON(status, sourceLocation: sourceLocation)
        #expect(Set(body.keys) == ["message"], sourceLocation: sourceLocation)
        let message = try #require(body["message"] as? [String: Any], sourceLocation: sourceLocation)
        try Shapes.expectMessage(message, sourceLocation: sourceLocation)
        return message
    }

    /// A page of history as `session` sees it, checked for shape and ascending seqs.
    func history(
        _ session: Session,
        _ chatID: String,
        _ query: String = "",
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: Any] {
        let response = try await self.request(.get, "\(api)/chats/\(chatID)/messages\(query)", as: session)
        let body = try response.expectJSON(.ok, sourceLocation: sourceLocation)
        #expect(Set(body.keys) == ["messages", "hasMore"], sourceLocation: sourceLocation)
        #expect(body["hasMore"] is Bool, sourceLocation: sourceLocation)
        let messages = try #require(body["messages"] as? [[String: Any]], sourceLocation: sourceLocation)
        for message in messages {
            try Shapes.expectMessage(message, sourceLocation: sourceLocation)
            #expect(message["chatId"] as? String == chatID, sourceLocation: sourceLocation)
        }
        let seqs = Shapes.seqs(body)
        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count, "history not in ascending seq: \(seqs)", sourceLocation: sourceLocation)
        return body
    }

    /// A page of the chat list, checked for shape.
    func chatPage(_ session: Session, _ query: String = "", sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
        let body = try await self.request(.get, "\(api)/chats\(query)", as: session).expectJSON(.ok, sourceLocation: sourceLocation)
        #expect(Set(body.keys).isSubset(of: ["chats", "nextCursor"]) && body["chats"] != nil, sourceLocation: sourceLocation)
        if let cursor = body["nextCursor"], !(cursor is NSNull) {
            #expect((cursor as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        }
        for chat in try #require(body["chats"] as? [[String: Any]], sourceLocation: sourceLocation) {
            try Shapes.expectChatSummary(chat, sourceLocation: sourceLocation)
        }
        return body
    }

    /// The ids of the chats `session` is in, newest activity first.
    func chatIDs(_ session: Session, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String] {
        let page = try await self.chatPage(session, "?limit=200", sourceLocation: sourceLocation)
        return (page["chats"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    /// One chat as `session` sees it, checked for shape.
    func chat(_ session: Session, _ chatID: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
        let chat = try await self.request(.get, "\(api)/chats/\(chatID)", as: session).expectJSON(.ok, sourceLocation: sourceLocation)
        try Shapes.expectChatSummary(chat, sourceLocation: sourceLocation)
        return chat
    }

    /// Moves the read pointer of `session`.
    func markRead(_ session: Session, _ chatID: String, seq: String) async throws -> TestResponse {
        try await self.request(.post, "\(api)/chats/\(chatID)/read", as: session, json: #"{"seq":\#(seq)}"#)
    }

    /// Uploads a file of any kind into a chat as a multipart message (the `file` field).
    func uploadFile(
        _ session: Session,
        to chatID: String,
        _ data: [UInt8],
        filename: String,
        contentType: String = "application/octet-stream",
        text: String? = nil
    ) async throws -> TestResponse {
        var form = MultipartBody()
        form.field("clientMessageId", UUID().uuidString.lowercased())
        if let text { form.field("text", text) }
        form.file("file", filename: filename, contentType: contentType, data)
        return try await self.request(.post, "\(api)/chats/\(chatID)/messages", as: session, form: form)
    }

    /// Uploads an image into a chat as a multipart message.
    func upload(
        _ session: Session,
        to chatID: String,
        _ data: [UInt8],
        filename: String = "picture.png",
        contentType: String = "image/png",
        text: String? = nil,
        clientMessageID: String? = nil
    ) async throws -> TestResponse {
        var form = MultipartBody()
        form.field("clientMessageId", clientMessageID ?? UUID().uuidString.lowercased())
        if let text { form.field("text", text) }
        form.file("image", filename: filename, contentType: contentType, data)
        return try await self.request(.post, "\(api)/chats/\(chatID)/messages", as: session, form: form)
    }
}

/// A multipart/form-data body built part by part.
struct MultipartBody: Sendable {
    let boundary = "parley-test-\(UUID().uuidString)"
    private var bytes: [UInt8] = []

    /// Adds a text field.
    mutating func field(_ name: String, _ value: String) {
        self.part(#"Content-Disposition: form-data; name="\#(name)""#, Array(value.utf8))
    }

    /// Adds a file part.
    mutating func file(_ name: String, filename: String, contentType: String, _ data: [UInt8]) {
        self.part(#"Content-Disposition: form-data; name="\#(name)"; filename="\#(filename)""# + "\r\nContent-Type: \(contentType)", data)
    }

    private mutating func part(_ headers: String, _ data: [UInt8]) {
        self.bytes += Array("--\(self.boundary)\r\n\(headers)\r\n\r\n".utf8) + data + Array("\r\n".utf8)
    }

    var contentType: String { "multipart/form-data; boundary=\(self.boundary)" }
    var buffer: ByteBuffer { ByteBuffer(bytes: self.bytes + Array("--\(self.boundary)--\r\n".utf8)) }
}

/// Checks of the contract's answer shapes (tests/e2e/harness.py has the same).
enum Shapes {
    static let timestamp = #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#

    static func isTimestamp(_ value: Any?) -> Bool {
        (value as? String)?.range(of: Self.timestamp, options: .regularExpression) != nil
    }

    /// Whether `value` is a JSON whole number (not a boolean).
    static func isInteger(_ value: Any?) -> Bool {
        // Foundation decodes `true` as an NSNumber too; its type code tells it apart from a number.
        guard let number = value as? NSNumber, !["c", "B"].contains(String(cString: number.objCType)) else { return false }
        return number.doubleValue == number.doubleValue.rounded()
    }

    static func seqs(_ page: [String: Any]) -> [Int] {
        (page["messages"] as? [[String: Any]] ?? []).compactMap { $0["seq"] as? Int }
    }

    static func readState(_ chat: [String: Any]) -> [String: Int] {
        var states: [String: Int] = [:]
        for state in chat["readState"] as? [[String: Any]] ?? [] {
            if let user = state["userId"] as? String, let seq = state["lastReadSeq"] as? Int { states[user] = seq }
        }
        return states
    }

    /// A `User`: {id, email, name, avatarUrl?, emailNotifications, allowGroupAdds, createdAt}.
    static func expectUser(_ user: [String: Any], email: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let keys = Set(user.keys)
        let required: Set = ["id", "email", "name", "emailNotifications", "allowGroupAdds", "createdAt"]
        #expect(keys.isSuperset(of: required), "\(user)", sourceLocation: sourceLocation)
        #expect(keys.isSubset(of: required.union(["avatarUrl"])), "\(user)", sourceLocation: sourceLocation)
        #expect(user["emailNotifications"] is Bool && user["allowGroupAdds"] is Bool, "\(user)", sourceLocation: sourceLocation)
        #expect((user["id"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect((user["name"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(Self.isTimestamp(user["createdAt"]), sourceLocation: sourceLocation)
        #expect(user["avatarUrl"] == nil || user["avatarUrl"] is NSNull || user["avatarUrl"] is String, sourceLocation: sourceLocation)
        if let email { #expect(user["email"] as? String == email, sourceLocation: sourceLocation) }
    }

    /// A `PublicUser`: {id, name, avatarUrl?}, never an email.
    static func expectPublicUser(_ user: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) {
        let keys = Set(user.keys)
        #expect(keys.isSuperset(of: ["id", "name"]) && keys.isSubset(of: ["id", "name", "avatarUrl"]), "\(user)", sourceLocation: sourceLocation)
        #expect(user["id"] is String && user["name"] is String, sourceLocation: sourceLocation)
    }

    /// The answer of verify and refresh: {user, accessToken, refreshToken, expiresIn}.
    static func expectAuthResponse(_ body: [String: Any], email: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(Set(body.keys) == ["user", "accessToken", "refreshToken", "expiresIn"], sourceLocation: sourceLocation)
        Self.expectUser(try #require(body["user"] as? [String: Any], sourceLocation: sourceLocation), email: email, sourceLocation: sourceLocation)
        #expect((body["accessToken"] as? String)?.filter { $0 == "." }.count == 2, sourceLocation: sourceLocation)
        #expect(((body["refreshToken"] as? String)?.count ?? 0) >= 20, sourceLocation: sourceLocation)
        #expect(body["expiresIn"] as? Int == 900, "access tokens last 15 minutes", sourceLocation: sourceLocation)
    }

    /// A `Message`: {id, chatId, seq, senderId, kind, text?, image?, clientMessageId?, createdAt, version, editedAt?, replyTo?, reactions, mentions}.
    static func expectMessage(_ message: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let required: Set = ["id", "chatId", "seq", "senderId", "kind", "createdAt", "version", "reactions", "mentions"]
        let keys = Set(message.keys)
        #expect(keys.isSuperset(of: required), "\(message)", sourceLocation: sourceLocation)
        #expect(
            keys.isSubset(of: required.union(["text", "image", "file", "clientMessageId", "editedAt", "replyTo", "system"])),
            "\(message)",
            sourceLocation: sourceLocation
        )
        #expect(Self.isInteger(message["version"]) && (message["version"] as? Int ?? 0) >= 1, sourceLocation: sourceLocation)
        #expect(message["reactions"] is [Any] && message["mentions"] is [Any], sourceLocation: sourceLocation)
        if let editedAt = message["editedAt"] { #expect(Self.isTimestamp(editedAt), sourceLocation: sourceLocation) }
        if let reply = message["replyTo"] as? [String: Any] {
            let replyKeys = Set(reply.keys)
            #expect(replyKeys.isSuperset(of: ["seq", "senderId", "kind"]), sourceLocation: sourceLocation)
            #expect(replyKeys.isSubset(of: ["seq", "senderId", "kind", "text"]), sourceLocation: sourceLocation)
        }
        #expect((message["id"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(message["chatId"] is String && message["senderId"] is String, sourceLocation: sourceLocation)
        #expect(Self.isInteger(message["seq"]) && (message["seq"] as? Int ?? 0) >= 1, sourceLocation: sourceLocation)
        #expect(Self.isTimestamp(message["createdAt"]), sourceLocation: sourceLocation)
        let cmid = message["clientMessageId"]
        #expect(cmid == nil || cmid is NSNull || cmid is String, sourceLocation: sourceLocation)
        switch message["kind"] as? String {
        case "text":
            #expect((message["text"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
            #expect(message["image"] == nil || message["image"] is NSNull, sourceLocation: sourceLocation)
        case "image":
            let image = try #require(message["image"] as? [String: Any], sourceLocation: sourceLocation)
            let imageKeys = Set(image.keys)
            #expect(imageKeys.isSuperset(of: ["url", "contentType", "size"]), sourceLocation: sourceLocation)
            #expect(imageKeys.isSubset(of: ["url", "thumbnailUrl", "contentType", "size", "width", "height"]), sourceLocation: sourceLocation)
            #expect((image["url"] as? String)?.contains("/api/v1/files/") == true, sourceLocation: sourceLocation)
            if let thumbnail = image["thumbnailUrl"] {
                #expect((thumbnail as? String)?.contains("/api/v1/files/") == true, sourceLocation: sourceLocation)
            }
            #expect((image["size"] as? Int ?? 0) > 0, sourceLocation: sourceLocation)
            #expect(message["file"] == nil, sourceLocation: sourceLocation)
        case "file":
            let file = try #require(message["file"] as? [String: Any], sourceLocation: sourceLocation)
            #expect(Set(file.keys) == ["url", "name", "contentType", "size"], "\(file)", sourceLocation: sourceLocation)
            #expect((file["url"] as? String)?.contains("/api/v1/files/") == true, sourceLocation: sourceLocation)
            #expect((file["name"] as? String)?.isEmpty == false && file["contentType"] is String, sourceLocation: sourceLocation)
            #expect(Self.isInteger(file["size"]), sourceLocation: sourceLocation)
            #expect(message["image"] == nil, sourceLocation: sourceLocation)
        case "system":
            // A change to a group: who did what, never any text.
            let system = try #require(message["system"] as? [String: Any], sourceLocation: sourceLocation)
            #expect(Set(system.keys).isSubset(of: ["action", "actorId", "userIds", "name", "role"]), "\(system)", sourceLocation: sourceLocation)
            let actions: Set = ["added", "removed", "left", "renamed", "photo", "role", "owner"]
            #expect(actions.contains(system["action"] as? String ?? ""), "\(system)", sourceLocation: sourceLocation)
            #expect(system["actorId"] as? String == message["senderId"] as? String, sourceLocation: sourceLocation)
            #expect(message["text"] == nil && message["image"] == nil, sourceLocation: sourceLocation)
        case "deleted":
            // A tombstone: nothing of what was said is left.
            #expect(keys.isSubset(of: required.union(["clientMessageId"])), "\(message)", sourceLocation: sourceLocation)
            #expect(
                (message["reactions"] as? [Any])?.isEmpty == true && (message["mentions"] as? [Any])?.isEmpty == true,
                sourceLocation: sourceLocation
            )
        default:
            Issue.record("message kind \(message["kind"] ?? "none")", sourceLocation: sourceLocation)
        }
    }

    /// A `ChatSummary`: {id, kind, name?, members, lastMessage?, unreadCount, readState, updatedAt}.
    static func expectChatSummary(_ chat: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let required: Set = ["id", "kind", "members", "unreadCount", "readState", "updatedAt", "version", "mentionCount"]
        let keys = Set(chat.keys)
        let allowed = required.union(["name", "lastMessage", "avatarUrl"])
        #expect(keys.isSuperset(of: required) && keys.isSubset(of: allowed), "\(chat)", sourceLocation: sourceLocation)
        #expect((chat["id"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        let kind = chat["kind"] as? String
        #expect(kind == "direct" || kind == "group", sourceLocation: sourceLocation)
        if kind == "group" { #expect((chat["name"] as? String)?.isEmpty == false, sourceLocation: sourceLocation) }
        let members = try #require(chat["members"] as? [[String: Any]], sourceLocation: sourceLocation)
        #expect(members.count >= (kind == "direct" ? 2 : 1), sourceLocation: sourceLocation)
        for member in members {
            // A PublicUser and the member's role.
            var profile = member
            let role = profile.removeValue(forKey: "role") as? String
            Self.expectPublicUser(profile, sourceLocation: sourceLocation)
            #expect(["owner", "admin", "member"].contains(role ?? ""), "\(member)", sourceLocation: sourceLocation)
            if kind == "direct" { #expect(role == "member", sourceLocation: sourceLocation) }
        }
        if kind == "group" {
            #expect(members.filter { $0["role"] as? String == "owner" }.count == 1, "one owner: \(members)", sourceLocation: sourceLocation)
        }
        if let last = chat["lastMessage"] as? [String: Any] {
            try Self.expectMessage(last, sourceLocation: sourceLocation)
            #expect(last["chatId"] as? String == chat["id"] as? String, sourceLocation: sourceLocation)
        }
        #expect(Self.isInteger(chat["unreadCount"]) && (chat["unreadCount"] as? Int ?? -1) >= 0, sourceLocation: sourceLocation)
        let states = try #require(chat["readState"] as? [[String: Any]], sourceLocation: sourceLocation)
        for state in states {
            #expect(Set(state.keys) == ["userId", "lastReadSeq"], sourceLocation: sourceLocation)
            #expect(Self.isInteger(state["lastReadSeq"]) && (state["lastReadSeq"] as? Int ?? -1) >= 0, sourceLocation: sourceLocation)
        }
        #expect(Set(states.compactMap { $0["userId"] as? String }) == Set(members.compactMap { $0["id"] as? String }), sourceLocation: sourceLocation)
        #expect(Self.isTimestamp(chat["updatedAt"]), sourceLocation: sourceLocation)
    }
}
