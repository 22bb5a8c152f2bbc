import Hummingbird
import NIOCore

/// The errors an Engine.IO server answers HTTP requests with, as the reference server writes them: `{"code":…,"message":…}`.
enum EngineError: Int, Error, Sendable {
    /// The `transport` query parameter is missing or not `polling`/`websocket`.
    case unknownTransport = 0
    /// The `sid` names no live session.
    case unknownSessionID = 1
    /// A session can only be opened with GET.
    case badHandshakeMethod = 2
    /// The request does not fit the session's state (a second long-poll, polling after the upgrade, a malformed body).
    case badRequest = 3
    /// The application refused the request.
    case forbidden = 4
    /// `EIO` is not 4.
    case unsupportedProtocolVersion = 5

    /// The message the reference server sends with the code.
    var message: String {
        switch self {
        case .unknownTransport: "Transport unknown"
        case .unknownSessionID: "Session ID unknown"
        case .badHandshakeMethod: "Bad handshake method"
        case .badRequest: "Bad request"
        case .forbidden: "Forbidden"
        case .unsupportedProtocolVersion: "Unsupported protocol version"
        }
    }

    /// The error as an HTTP response: 403 for `forbidden`, 400 for the rest.
    var response: Response {
        let body = #"{"code":\#(self.rawValue),"message":"\#(self.message)"}"#
        return Response(
            status: self == .forbidden ? .forbidden : .badRequest,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }
}

extension SessionLimits.Refusal {
    /// The refusal of a handshake: 429 (this address) or 503 (the server), with an Engine.IO error body and Retry-After.
    var response: Response {
        let (status, message, retryAfter): (HTTPResponse.Status, String, String) =
            switch self {
            case .address: (.tooManyRequests, "Too many sessions from this address", "1")
            case .server: (.serviceUnavailable, "Too many sessions", "5")
            }
        return Response(
            status: status,
            headers: [.contentType: "application/json", .retryAfter: retryAfter],
            body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"code":\#(EngineError.forbidden.rawValue),"message":"\#(message)"}"#))
        )
    }
}
