import AsyncHTTPClient
import Crypto
public import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
import NIOHTTP1
public import ParleyCore

/// Files as objects of a bucket in an S3-compatible store (AWS S3, MinIO, Ceph, moto…), so chat instances on several
/// machines share them without a shared folder. Requests are signed with AWS Signature Version 4; an object appears whole
/// or not at all (a PUT is atomic), so nothing is ever half-written. Parley still serves every download itself.
public struct S3BlobStore: BlobStore {
    let settings: S3Settings
    let signer: SigV4
    let logger: Logger
    /// The endpoint's scheme and `host[:port]` (an IPv6 address in brackets).
    let scheme: String
    let authority: String
    /// `scheme://host:port` to connect to instead of the address's host, which the `Host` header still names (as curl's
    /// `--resolve`): tests reach a virtual-host style bucket name that no resolver here knows.
    package var connectionOverride: String?

    /// One client for every store of the process, never shut down (it lives as long as the process).
    static let client: HTTPClient = {
        // The read timeout runs between two chunks of an answer: a download streamed to a slow client waits for it
        // between chunks, so it is generous; requests that are not streamed have a deadline of their own.
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(120)))
        // As many connections as downloads stream at once; a store that is down fails the request at once instead of
        // retrying until its deadline.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// A store of the bucket `settings` name.
    public init(settings: S3Settings, logger: Logger = Logger(label: "parley.files")) {
        self.settings = settings
        self.signer = SigV4(
            accessKeyID: settings.accessKeyID,
            secretAccessKey: settings.secretAccessKey,
            sessionToken: settings.sessionToken,
            region: settings.region,
            service: "s3"
        )
        self.logger = logger
        let endpoint = URLComponents(string: settings.endpoint)
        self.scheme = endpoint?.scheme ?? "https"
        var host = endpoint?.host ?? ""
        if host.contains(":") && !host.hasPrefix("[") { host = "[\(host)]" }
        self.authority = host + (endpoint?.port.map { ":\($0)" } ?? "")
    }

    public func put(_ bytes: [UInt8], key: String) async throws {
        let response = try await self.send(.PUT, key: key, body: bytes, operation: "store")
        guard response.status == .ok else { throw await self.failure("store", key: key, response) }
    }

    public func get(key: String) async throws -> [UInt8]? {
        let response = try await self.send(.GET, key: key, operation: "read")
        switch response.status {
        case .ok:
            do {
                return Array(buffer: try await response.body.collect(upTo: Int(Int32.max)))
            } catch {
                throw self.unavailable("read", key: key, detail: "\(error)")
            }
        case .notFound:
            try await self.checkMissingKey("read", key: key, response)
            return nil
        default:
            throw await self.failure("read", key: key, response)
        }
    }

    /// The size of the object under `key`, or nil when there is none (a HEAD request).
    public func size(key: String) async throws -> Int? {
        let response = try await self.send(.HEAD, key: key, operation: "look up")
        switch response.status {
        case .ok: return response.headers.first(name: "content-length").flatMap { Int($0) }
        case .notFound: return nil
        default: throw await self.failure("look up", key: key, response)
        }
    }

    public func delete(key: String) async throws {
        let response = try await self.send(.DELETE, key: key, operation: "erase")
        guard [.noContent, .ok, .notFound].contains(response.status) else { throw await self.failure("erase", key: key, response) }
    }

    public func stream(key: String, range: ClosedRange<Int>, context: some RequestContext) async throws -> ResponseBody {
        // Asked before the answer starts, so a store that is down or a missing object is an error answer, not a cut body.
        let response = try await self.send(
            .GET,
            key: key,
            headers: [("range", "bytes=\(range.lowerBound)-\(range.upperBound)")],
            operation: "read",
            // A slow reader may take long over a big file; the read timeout still catches a store that stops sending.
            deadline: .now() + .hours(6)
        )
        switch response.status {
        case .ok, .partialContent:
            guard response.headers.first(name: "content-length").flatMap({ Int($0) }) == range.count else {
                throw self.unavailable("read", key: key, detail: "the store answered a range of \(range.count) bytes with another length")
            }
        case .notFound:
            try await self.checkMissingKey("read", key: key, response)
            // As the disk store answers a missing file.
            throw HTTPError(.notFound)
        default:
            throw await self.failure("read", key: key, response)
        }
        let body = response.body
        return ResponseBody(contentLength: range.count) { writer in
            // Each chunk written before the next is read: the client's pace is the store's.
            for try await chunk in body { try await writer.write(chunk) }
            try await writer.finish(nil)
        }
    }

    public func keys(writtenBefore cutoff: Date, _ body: ([String]) async throws -> Void) async throws {
        // No half-written objects to erase: an object appears whole or not at all.
        try await self.list { objects in
            let keys = objects.filter { $0.lastModified < cutoff }.map(\.key)
            if !keys.isEmpty { try await body(keys) }
        }
    }

    /// Calls `body` with every object under the store's prefix, a page (at most `pageSize`) at a time, in key order.
    public func list(pageSize: Int = 1000, _ body: ([S3Object]) async throws -> Void) async throws {
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("max-keys", "\(pageSize)")]
            if !self.settings.prefix.isEmpty { query.append(("prefix", self.settings.prefix)) }
            if let token { query.append(("continuation-token", token)) }
            let response = try await self.send(.GET, key: nil, query: query, operation: "list")
            guard response.status == .ok else { throw await self.failure("list", key: nil, response) }
            let xml: String
            do {
                xml = String(buffer: try await response.body.collect(upTo: 16 << 20))
            } catch {
                throw self.unavailable("list", key: nil, detail: "\(error)")
            }
            let page = ListBucketPage(xml: xml)
            let objects = page.objects.compactMap { object -> S3Object? in
                guard object.key.hasPrefix(self.settings.prefix) else { return nil }
                return S3Object(key: String(object.key.dropFirst(self.settings.prefix.count)), lastModified: object.lastModified)
            }
            if !objects.isEmpty { try await body(objects) }
            token = page.isTruncated ? page.nextToken : nil
            if page.isTruncated && token == nil {
                throw self.unavailable("list", key: nil, detail: "a truncated listing without a continuation token")
            }
        } while token != nil
    }

    /// The bucket is there and answers these credentials: a HEAD of the bucket (no object is read), within two seconds.
    public func check() async throws {
        let response = try await self.send(.HEAD, key: nil, operation: "reach", deadline: .now() + .seconds(2))
        guard response.status == .ok else {
            // A HEAD answer has no body to name the store's error code; the status says enough (404: no such bucket).
            throw self.unavailable("reach", key: nil, detail: "HTTP \(response.status.code)")
        }
    }

    /// Makes the bucket (for tests and first setups); one that exists already is no error.
    public func createBucket() async throws {
        var body: [UInt8]?
        if self.settings.region != "us-east-1" {
            let xml =
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(self.settings.region)</LocationConstraint></CreateBucketConfiguration>"
            body = Array(xml.utf8)
        }
        let response = try await self.send(.PUT, key: nil, body: body, operation: "create the bucket")
        guard response.status == .ok || response.status == .conflict else { throw await self.failure("create the bucket", key: nil, response) }
    }

    /// Sends a signed request for object `key` (nil: the bucket itself) and returns the answer, its body unread.
    func send(
        _ method: HTTPMethod,
        key: String?,
        query: [(String, String)] = [],
        headers extra: [(String, String)] = [],
        body: [UInt8]? = nil,
        operation: String,
        deadline: NIODeadline = .now() + .seconds(60)
    ) async throws -> HTTPClientResponse {
        let address = self.address(key: key)
        let payloadHash = body.map { SigV4.hex(SHA256Digest.of($0)) } ?? SigV4.emptyPayloadHash
        var headers = [("host", address.host), ("x-amz-content-sha256", payloadHash)] + extra
        if let body { headers.append(("content-length", "\(body.count)")) }
        let signed = self.signer.sign(
            method: method.rawValue,
            path: address.path,
            query: query,
            headers: headers,
            payloadHash: payloadHash,
            date: Date()
        )
        var url = (self.connectionOverride ?? address.base) + SigV4.canonicalPath(address.path)
        if !query.isEmpty { url += "?" + SigV4.canonicalQuery(query) }
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in signed where name != "content-length" { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            return try await Self.client.execute(request, deadline: deadline, logger: self.logger)
        } catch {
            throw self.unavailable(operation, key: key, detail: "\(error)")
        }
    }

    /// The scheme and host part of the URL, the `Host` header, and the path (not yet encoded) of `key` or of the bucket.
    func address(key: String?) -> (base: String, host: String, path: String) {
        let object = key.map { self.settings.prefix + $0 }
        switch self.settings.style {
        case .path:
            return ("\(self.scheme)://\(self.authority)", self.authority, "/\(self.settings.bucket)" + (object.map { "/" + $0 } ?? ""))
        case .virtual:
            let virtualHost = "\(self.settings.bucket).\(self.authority)"
            return ("\(self.scheme)://\(virtualHost)", virtualHost, "/" + (object ?? ""))
        }
    }

    /// Returns when a 404 is about the object (`NoSuchKey`); throws when the bucket itself is missing (`NoSuchBucket`, a
    /// setup fault that must not read as a missing file).
    private func checkMissingKey(_ operation: String, key: String, _ response: HTTPClientResponse) async throws {
        let text = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
        if let code = ListBucketPage.element("Code", in: text), code == "NoSuchBucket" {
            throw self.unavailable(operation, key: key, detail: "HTTP 404 \(code)")
        }
    }

    /// The error for an answer other than the ones expected, with the store's own error code when it sent one.
    private func failure(_ operation: String, key: String?, _ response: HTTPClientResponse) async -> ObjectStoreError {
        let text = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
        let code = ListBucketPage.element("Code", in: text).map { " \($0)" } ?? ""
        return self.unavailable(operation, key: key, detail: "HTTP \(response.status.code)\(code)")
    }

    private func unavailable(_ operation: String, key: String?, detail: String) -> ObjectStoreError {
        let error = ObjectStoreError(operation: operation, bucket: self.settings.bucket, key: key, detail: detail)
        self.logger.warning("object store request failed", metadata: ["error": "\(error)"])
        return error
    }
}

/// An object of a listing: its key (without the store's prefix) and when it was written.
public struct S3Object: Sendable, Equatable {
    public var key: String
    public var lastModified: Date
}

/// The object store could not be reached or refused a request: the file cannot be stored or read now (503, try again).
public struct ObjectStoreError: Error, CustomStringConvertible, APIErrorConvertible {
    let operation: String
    let bucket: String
    let key: String?
    let detail: String

    public var description: String {
        "could not \(self.operation) \(self.key.map { "object \($0)" } ?? "objects") in bucket \(self.bucket): \(self.detail)"
    }

    public var apiError: APIError {
        APIError(
            .serviceUnavailable,
            code: "file_storage_unavailable",
            message: "Files cannot be stored or read right now; try again in a moment.",
            headers: [.retryAfter: "5"]
        )
    }
}

/// A page of a ListObjectsV2 answer, read with a small scanner (the answer is flat, and keys are Parley's own ids).
struct ListBucketPage {
    var objects: [S3Object] = []
    var isTruncated = false
    var nextToken: String?

    init(xml: String) {
        var rest = xml[...]
        while let start = rest.range(of: "<Contents>"), let end = rest.range(of: "</Contents>", range: start.upperBound..<rest.endIndex) {
            let entry = String(rest[start.upperBound..<end.lowerBound])
            if let key = Self.element("Key", in: entry), let written = Self.element("LastModified", in: entry).flatMap(Self.date) {
                self.objects.append(S3Object(key: key, lastModified: written))
            }
            rest = rest[end.upperBound...]
        }
        self.isTruncated = Self.element("IsTruncated", in: xml) == "true"
        self.nextToken = Self.element("NextContinuationToken", in: xml)
    }

    /// The text of the first element `name` in `xml`, its entities decoded.
    static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex) else {
            return nil
        }
        return Self.decodeEntities(String(xml[start.upperBound..<end.lowerBound]))
    }

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semicolon = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semicolon) <= 10 else {
                out += rest[amp...]
                return out
            }
            let entity = rest[rest.index(after: amp)..<semicolon]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number =
                    entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16) : entity.hasPrefix("#") ? UInt32(entity.dropFirst()) : nil
                if let number, let scalar = Unicode.Scalar(number) { out.unicodeScalars.append(scalar) } else { out += rest[amp...semicolon] }
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return out + rest
    }

    /// `2026-12-04T17:52:20.000Z`, with or without the fraction.
    static func date(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return withFraction.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}

extension SHA256Digest {
    /// The digest of `bytes`.
    static func of(_ bytes: [UInt8]) -> SHA256Digest { SHA256.hash(data: bytes) }
}
