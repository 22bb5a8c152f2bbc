import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOFoundationEssentialsCompat
import NIOHTTP1
public import ParleyCore
import Synchronization

/// Where the chat service gets other users' public profiles: the user service's data, in-process or over HTTP.
public protocol UserDirectory: Sendable {
    /// The profiles of those of `ids` that exist.
    func profiles(of ids: [String]) async throws -> [String: PublicUser]
}

/// Why the user service could not answer a look-up.
public enum UserDirectoryError: Error, Equatable, APIErrorConvertible {
    /// It answered with an error.
    case unavailable
    /// It could not be asked (refused, timed out, cut off), or its answer could not be read: why.
    case unreachable(String)

    /// The contract's answer.
    public var apiError: APIError {
        APIError(.badGateway, code: "user_service_unavailable", message: "The user service did not answer; try again shortly.")
    }
}

/// A split chat service asks with the caller's token, and was asked outside a request: a fault of the server.
struct MissingCallerToken: Error {}

/// A split chat service's directory: `GET /api/v1/users?ids=…` on the user service with the caller's token, kept for a short while.
public final class HTTPUserDirectory: UserDirectory {
    let baseURL: String
    let lifetime: Duration
    private let logger = Logger(label: "parley.user-directory")
    private let cache = Mutex<[String: (profile: PublicUser, fetched: ContinuousClock.Instant)]>([:])

    /// Asks the user service at `baseURL`; profiles are reused for `lifetime`.
    public init(baseURL: String, lifetime: Duration = .seconds(30)) {
        self.baseURL = baseURL
        self.lifetime = lifetime
    }

    /// A page of the user service's `GET /users`.
    private struct Page: Decodable { var users: [PublicUser] }

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
        guard let token = CallerToken.current else { throw MissingCallerToken() }
        for batch in missing.slices(of: 100) {
            var request = HTTPClientRequest(url: "\(self.baseURL)/api/v1/users?ids=\(batch.joined(separator: ","))&limit=200")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            // A user service that cannot be reached, times out or answers nonsense is unavailable (502), as one that
            // answers an error is: the caller can try again shortly.
            let page: Page
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                guard response.status == .ok else { throw UserDirectoryError.unavailable }
                page = try JSONDecoder().decode(Page.self, from: Data(buffer: try await response.body.collect(upTo: 4 << 20)))
            } catch let error as UserDirectoryError {
                throw error
            } catch {
                self.logger.warning("the user service could not be asked", metadata: ["error": "\(String(reflecting: error))"])
                throw UserDirectoryError.unreachable(String(describing: error))
            }
            let fetched = ContinuousClock.now
            self.cache.withLock { cache in
                for profile in page.users { cache[profile.id] = (profile, fetched) }
            }
            for profile in page.users { result[profile.id] = profile }
        }
        return result
    }
}
