public import Foundation
public import Hummingbird
import Logging
public import NIOCore

/// The request context of every Parley route: the caller once authenticated, the peer address, the request id.
public struct ParleyRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated user's id, set by ``AuthenticationMiddleware``.
    public var userID: String?
    /// The request id returned in `X-Request-Id` and carried into log lines and mail jobs.
    public var requestID: String = ""
    /// The client's IP address as the socket sees it.
    public let remoteIP: String
    /// The client's IP address: the peer's, or behind a trusted proxy the one it forwarded (``ForwardedClientMiddleware``).
    public var clientIP: String
    /// The event loop of the request's connection: a response body that streams waits on it to keep to the socket's
    /// pace (``PacedBodyWriter`` in ChatService).
    public let eventLoop: any EventLoop

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteIP = source.channel.remoteAddress?.ipAddress ?? "unknown"
        self.clientIP = self.remoteIP
        self.eventLoop = source.channel.eventLoop
    }

    /// JSON as clients expect it: URLs with plain slashes.
    public var responseEncoder: JSONEncoder { ParleyJSON.encoder }

    /// JSON bodies are small; file uploads read their body with their own limit.
    public var maxUploadSize: Int { 64 * 1024 }

    /// The authenticated user's id, or 401.
    public func requireUserID() throws -> String {
        guard let userID = self.userID else { throw APIError.unauthorized() }
        return userID
    }
}
