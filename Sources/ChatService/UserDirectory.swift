import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOFoundationEssentialsCompat
import NIOHTTP1
public import ParleyCore
public import ParleyStore
import Synchronization

/// Where the chat service gets other users' public profiles: the user service's data, in-process or over HTTP.
public protocol UserDirectory: Sendable {
    /// The profiles of those of `ids` that exist.
    func profiles(of ids: [String]) async throws -> [String: PublicUser]
}

/// Where the missed-message mailer gets what it mails with: the user service's data, in-process or over HTTP (a timer's
/// pass has no caller's token, so a split chat service asks with a service credential).
public protocol MailAddressBook: Sendable {
    /// The names, addresses and mail settings of those of `ids` that exist.
    func mailContacts(of ids: [String]) async throws -> [String: MailContact]
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

/// A split chat service's directory: `GET /api/v1/users?ids=…` on the user service with the caller's token, kept for a
/// short while; and its mailer's address book, `GET /internal/v1/users?ids=…` with a service credential, never kept
/// (a pass mails with the names and settings of the moment).
public final class HTTPUserDirectory: UserDirectory, MailAddressBook {
    let baseURL: String
    let lifetime: Duration
    let credentials: ServiceCredentials
    private let logger = Logger(label: "parley.user-directory")
    private let cache = Mutex<[String: (profile: PublicUser, fetched: ContinuousClock.Instant)]>([:])

    /// Asks the user service at `baseURL`, as a service with `credentials`; profiles are reused for `lifetime`.
    public init(baseURL: String, credentials: ServiceCredentials, lifetime: Duration = .seconds(30)) {
        self.baseURL = baseURL
        self.credentials = credentials
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
            let page = try await self.get(
                Page.self,
                "/api/v1/users?ids=\(batch.joined(separator: ","))&limit=200",
                authorization: "Bearer \(token)"
            )
            let fetched = ContinuousClock.now
            self.cache.withLock { cache in
                for profile in page.users { cache[profile.id] = (profile, fetched) }
            }
            for profile in page.users { result[profile.id] = profile }
        }
        return result
    }

    public func mailContacts(of ids: [String]) async throws -> [String: MailContact] {
        var result: [String: MailContact] = [:]
        for batch in Array(Set(ids)).slices(of: 100) {
            let list = try await self.get(
                MailContactList.self,
                "/internal/v1/users?ids=\(batch.joined(separator: ","))",
                authorization: self.credentials.authorization()
            )
            for contact in list.users { result[contact.id] = contact }
        }
        return result
    }

    /// `path` on the user service, its JSON answer read as `type`. A user service that cannot be reached, times out or
    /// answers nonsense is unavailable (502), as one that answers an error is: the caller can try again shortly.
    private func get<Answer: Decodable>(_ type: Answer.Type, _ path: String, authorization: String) async throws -> Answer {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.headers.add(name: "Authorization", value: authorization)
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            guard response.status == .ok else { throw UserDirectoryError.unavailable }
            return try JSONDecoder().decode(Answer.self, from: Data(buffer: try await response.body.collect(upTo: 4 << 20)))
        } catch let error as UserDirectoryError {
            throw error
        } catch {
            self.logger.warning("the user service could not be asked", metadata: ["error": "\(String(reflecting: error))"])
            throw UserDirectoryError.unreachable(String(describing: error))
        }
    }
}
