import Foundation
public import HTTPTypes
public import Hummingbird

/// Behind a load balancer every request comes from the balancer: when the peer is one of the trusted proxies, the client
/// is the last address in `X-Forwarded-For` that is not itself a trusted proxy (earlier entries are the client's to forge).
public struct ForwardedClientMiddleware: RouterMiddleware {
    public typealias Context = ParleyRequestContext

    let trustedProxies: Set<String>

    /// Trusts `X-Forwarded-For` from `trustedProxies` only.
    public init(trustedProxies: Set<String>) {
        self.trustedProxies = trustedProxies
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard self.trustedProxies.contains(context.remoteIP) else { return try await next(request, context) }
        var context = context
        context.clientIP = Self.client(forwardedFor: request.headers[values: .xForwardedFor], peer: context.remoteIP, trusted: self.trustedProxies)
        return try await next(request, context)
    }

    /// The client address a chain of proxies reports; the peer itself when the header says nothing usable.
    static func client(forwardedFor values: [String], peer: String, trusted: Set<String>) -> String {
        let hops = values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard IPAddressText.isValid(hop) else { return peer }
            if !trusted.contains(hop) { return hop }
        }
        return hops.first ?? peer
    }
}

extension HTTPField.Name {
    /// `X-Forwarded-For`.
    public static let xForwardedFor = Self("X-Forwarded-For")!
}
