import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore

/// Gives every request an id (the client's `X-Request-Id` when it is sane), puts it in the logger and the response.
public struct RequestIDMiddleware: RouterMiddleware {
    public typealias Context = ParleyRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let offered = request.headers[.requestID]
        let id = offered.flatMap { Self.isSane($0) ? $0 : nil } ?? Identifier.make()
        context.requestID = id
        // One request id per line: ours, which the client also sees, replaces Hummingbird's internal one.
        context.logger[metadataKey: "hb.request.id"] = nil
        context.logger[metadataKey: "requestId"] = .string(id)
        var response = try await next(request, context)
        response.headers[.requestID] = id
        return response
    }

    static func isSane(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
            }
    }
}

/// Marks the request's span failed when its answer is a server fault (5xx). ``ErrorMiddleware`` turns every error into
/// an answer, and Hummingbird's `TracingMiddleware`, just before this one, sets a span's error status only for a thrown
/// error: so a 5xx answer comes back to it as ``AnsweredServerFault``, which it records and rethrows, and the router
/// sends the very same answer.
public struct ServerFaultSpanMiddleware: RouterMiddleware {
    public typealias Context = ParleyRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        guard response.status.kind == .serverError else { return response }
        throw AnsweredServerFault(answer: response)
    }
}

/// A server fault already answered in the contract's shape (see ``ServerFaultSpanMiddleware``).
public struct AnsweredServerFault: HTTPResponseError, CustomStringConvertible {
    let answer: Response

    public var status: HTTPResponse.Status { self.answer.status }

    public func response(from request: Request, context: some RequestContext) throws -> Response { self.answer }

    public var description: String { "answered \(self.answer.status.code) \(self.answer.status.reasonPhrase)" }
}

/// Turns every error into the contract's error body, so no route can answer in another shape.
public struct ErrorMiddleware: RouterMiddleware {
    public typealias Context = ParleyRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            if APIError.isServerFault(error) {
                context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return try APIError(from: error).response(from: request, context: context)
        }
    }
}

/// Writes one log line per request: method, path, status, duration.
public struct RequestLogMiddleware: RouterMiddleware {
    public typealias Context = ParleyRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let millis = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info(
            "request",
            metadata: [
                "method": .string(request.method.rawValue),
                "path": .string(request.uri.path),
                "status": .stringConvertible(Int(response.status.code)),
                "durationMs": .stringConvertible((millis * 100).rounded() / 100),
            ]
        )
        return response
    }
}

extension HTTPField.Name {
    /// `X-Request-Id`.
    public static let requestID = Self("X-Request-Id")!
}
