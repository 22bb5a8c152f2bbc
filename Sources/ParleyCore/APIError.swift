public import Hummingbird
import NIOCore

/// An error that maps to the contract's error body: a status plus `{"error": {"code", "message"}}`.
public struct APIError: HTTPResponseError, Sendable {
    /// The HTTP status the error answers with.
    public let status: HTTPResponse.Status
    /// A stable snake_case code clients can branch on.
    public let code: String
    /// A human sentence.
    public let message: String
    /// Extra response headers, such as `Retry-After`.
    public let headers: HTTPFields

    /// Creates an error with its status, code and message.
    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// Renders the contract's error body.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: self.jsonBody)))
    }

    /// `{"error":{"code","message"}}`: the body of an HTTP error and of a realtime ack that failed.
    public var jsonBody: String {
        #"{"error":{"code":"# + JSONText.quote(self.code) + #","message":"# + JSONText.quote(self.message) + "}}"
    }
}

extension APIError {
    /// 400: the request body or a parameter is not valid.
    public static func badRequest(_ message: String, code: String = "invalid_request") -> APIError {
        APIError(.badRequest, code: code, message: message)
    }

    /// 401: no token, or a token that is not valid.
    public static func unauthorized(_ message: String = "A valid access token is required.", code: String = "unauthorized") -> APIError {
        APIError(.unauthorized, code: code, message: message)
    }

    /// 404: unknown, or not visible to the caller.
    public static func notFound(_ message: String = "Not found.", code: String = "not_found") -> APIError {
        APIError(.notFound, code: code, message: message)
    }

    /// 429 with `Retry-After` in whole seconds.
    public static func rateLimited(_ message: String, retryAfter seconds: Int, code: String = "rate_limited") -> APIError {
        var headers = HTTPFields()
        headers[.retryAfter] = String(max(1, seconds))
        return APIError(.tooManyRequests, code: code, message: message, headers: headers)
    }

    /// 500: a fault of the server, with no detail leaked to the client.
    // swift-format-ignore: DontRepeatTypeInStaticProperties
    public static let internalError = APIError(.internalServerError, code: "internal_error", message: "Something went wrong on the server.")
}

/// An error with an answer in the contract: every service's and store's domain errors conform, and the edge (an HTTP
/// route's ``ErrorMiddleware`` or a realtime ack) turns them into their ``APIError`` through ``APIError/init(from:)``.
public protocol APIErrorConvertible: Error {
    /// The status, code and message this error answers with.
    var apiError: APIError { get }
}

extension APIErrorConvertible {
    /// `{"error":{"code","message"}}` of ``apiError``.
    public var jsonBody: String { self.apiError.jsonBody }
}

extension APIError: APIErrorConvertible {
    /// Itself.
    public var apiError: APIError { self }
}

extension APIError {
    /// The contract's answer to `error`, the one conversion every edge uses: a domain error's own answer, Hummingbird's
    /// HTTP errors in the contract's words, and a 500 for anything else (see ``isServerFault(_:)``).
    public init(from error: any Error) {
        switch error {
        case let error as any APIErrorConvertible: self = error.apiError
        case let error as HTTPError: self = Self.translate(error)
        case is NIOTooManyBytesError: self = Self.translate(HTTPError(.contentTooLarge))
        default: self = .internalError
        }
    }

    /// Whether `error` has no answer in the contract: a fault of the server, worth a log line.
    public static func isServerFault(_ error: any Error) -> Bool {
        !(error is any APIErrorConvertible || error is HTTPError || error is NIOTooManyBytesError)
    }

    static func translate(_ error: HTTPError) -> APIError {
        switch error.status {
        case .badRequest: .badRequest(error.body ?? "The request is not valid.")
        case .notFound: .notFound("There is nothing at this address.")
        case .methodNotAllowed: APIError(.methodNotAllowed, code: "method_not_allowed", message: "This method is not allowed here.")
        case .contentTooLarge: APIError(.contentTooLarge, code: "payload_too_large", message: "The request body is too large.")
        case .unsupportedMediaType: APIError(.unsupportedMediaType, code: "unsupported_media_type", message: error.body ?? "Unsupported media type.")
        case .unauthorized: .unauthorized()
        default:
            if error.status.code >= 500 {
                .internalError
            } else {
                APIError(error.status, code: "error", message: error.body ?? error.status.reasonPhrase)
            }
        }
    }
}
