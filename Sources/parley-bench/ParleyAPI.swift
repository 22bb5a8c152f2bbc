import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SocketIOProtocol

/// A user the benchmark acts as: one line of `parley users create`.
struct BenchUser: Sendable {
    var id: String
    var accessToken: String

    /// The users of a file of JSON lines `{"id":…,"accessToken":…}`, as `parley users create` prints them.
    static func load(path: String) throws -> [BenchUser] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CorrectnessFailure("cannot read the users file \(path)") }
        return try text.split(separator: "\n").enumerated().map { index, line in
            let value = try? JSONValue(parsing: String(line))
            guard let id = value?["id"]?.stringValue, let token = value?["accessToken"]?.stringValue else {
                throw CorrectnessFailure("\(path):\(index + 1) is not a user line with id and accessToken")
            }
            return BenchUser(id: id, accessToken: token)
        }
    }
}

/// Parley's public HTTP API, the few routes the scenarios need.
struct ParleyAPI: Sendable {
    let baseURL: String
    let http: HTTPClient

    /// Sends one request; returns the status and the body as JSON (null when empty).
    func call(_ method: HTTPMethod, _ path: String, token: String?, json: String? = nil) async throws -> (status: Int, body: JSONValue) {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await self.http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let body = bytes.readableBytes == 0 ? JSONValue.null : try JSONValue(parsingUTF8: Array(bytes.readableBytesView))
        return (Int(response.status.code), body)
    }

    /// The direct chat between the caller and `otherID` (opened if new), and its last seq so far.
    func openDirect(token: String, with otherID: String) async throws -> (id: String, lastSeq: Int) {
        let (status, body) = try await self.call(.POST, "/api/v1/chats", token: token, json: #"{"userId":"# + JSONText.quoted(otherID) + "}")
        guard status == 200 || status == 201, let chat = body["chat"], let id = chat["id"]?.stringValue else {
            throw CorrectnessFailure("POST /api/v1/chats answered \(status): \(body.jsonText().prefix(300))")
        }
        return (id, chat["lastMessage"]?["seq"]?.intValue ?? 0)
    }

    /// A new group chat of the caller and `memberIDs`, to each of whom the caller first opens a direct chat (one adds
    /// only people one already shares a chat with).
    func createGroup(token: String, name: String, memberIDs: [String]) async throws -> String {
        for memberID in memberIDs { _ = try await self.openDirect(token: token, with: memberID) }
        let json = #"{"name":"# + JSONText.quoted(name) + #","memberIds":"# + JSONText.array(memberIDs.map(JSONText.quoted)) + "}"
        let (status, body) = try await self.call(.POST, "/api/v1/chats", token: token, json: json)
        guard status == 201, let id = body["chat"]?["id"]?.stringValue else {
            throw CorrectnessFailure("POST /api/v1/chats (group) answered \(status): \(body.jsonText().prefix(300))")
        }
        return id
    }

    /// Waits until `/health` answers 200.
    func waitHealthy(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let (status, _) = try? await self.call(.GET, "/health", token: nil), status == 200 { return }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw CorrectnessFailure("\(self.baseURL)/health did not answer 200 within \(timeout)")
    }
}
