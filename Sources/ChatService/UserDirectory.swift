import AsyncHTTPClient
import Foundation
import NIOCore
import ParleyCore
import ParleyStore
import SQLKit
import Synchronization

/// Where the chat service gets other users' public profiles: the user service's data, in-process or over HTTP.
public protocol UserDirectory: Sendable {
    /// The profiles of those of `ids` that exist.
    func profiles(of ids: [String]) async throws -> [String: PublicUser]
}

/// The all-in-one directory: the users table of the shared database.
public struct DatabaseUserDirectory: UserDirectory {
    let database: Database
    let signer: FileURLSigner

    public init(database: Database, signer: FileURLSigner) {
        self.database = database
        self.signer = signer
    }

    public func profiles(of ids: [String]) async throws -> [String: PublicUser] {
        guard !ids.isEmpty else { return [:] }
        return try await self.database.read { sql in
            var result: [String: PublicUser] = [:]
            for row in try await sql.raw("SELECT id, name, avatar_file_id FROM users WHERE id IN (\(binds: ids))").all() {
                let id = try row.decode(column: "id", as: String.self)
                let avatar = try row.decode(column: "avatar_file_id", as: String?.self)
                result[id] = PublicUser(id: id, name: try row.decode(column: "name", as: String.self), avatarUrl: avatar.map { self.signer.url(forFile: $0) })
            }
            return result
        }
    }
}

/// A split chat service's directory: `GET /api/v1/users?ids=…` on the user service with the caller's token, kept for a short while.
public final class HTTPUserDirectory: UserDirectory {
    let baseURL: String
    let lifetime: Duration
    private let cache = Mutex<[String: (profile: PublicUser, fetched: ContinuousClock.Instant)]>([:])

    /// Asks the user service at `baseURL`; profiles are reused for `lifetime`.
    public init(baseURL: String, lifetime: Duration = .seconds(30)) {
        self.baseURL = baseURL
        self.lifetime = lifetime
    }

    public func profiles(of ids: [String]) async throws -> [String: PublicUser] {
        let now = ContinuousClock.now
        var result: [String: PublicUser] = [:]
        var missing: [String] = []
        self.cache.withLock { cache in
            for id in Set(ids) {
                if let entry = cache[id], now - entry.fetched < self.lifetime { result[id] = entry.profile } else { missing.append(id) }
            }
        }
        guard !missing.isEmpty else { return result }
        guard let token = CallerToken.current else { throw APIError.internalError }
        for start in stride(from: 0, to: missing.count, by: 100) {
            let batch = missing[start..<min(start + 100, missing.count)]
            var request = HTTPClientRequest(url: "\(self.baseURL)/api/v1/users?ids=\(batch.joined(separator: ","))&limit=200")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            guard response.status == .ok else {
                throw APIError(.badGateway, code: "user_service_unavailable", message: "The user service did not answer; try again shortly.")
            }
            struct Page: Decodable { var users: [PublicUser] }
            let page = try JSONDecoder().decode(Page.self, from: Data(buffer: try await response.body.collect(upTo: 4 << 20)))
            let fetched = ContinuousClock.now
            self.cache.withLock { cache in
                for profile in page.users { cache[profile.id] = (profile, fetched) }
            }
            for profile in page.users { result[profile.id] = profile }
        }
        return result
    }
}
