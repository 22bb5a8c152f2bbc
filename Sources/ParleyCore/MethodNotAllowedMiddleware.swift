import HTTPTypes
public import Hummingbird

/// Answers 405 `method_not_allowed` with `Allow` for a path that is routed, but not for the request's method.
///
/// Add it to the router after every route: a middleware added last wraps only the router's not-found answer, so it
/// sees exactly the requests no route took, and the routes it knows are the router's at that moment.
public struct MethodNotAllowedMiddleware: RouterMiddleware {
    public typealias Context = ParleyRequestContext

    let routes: [(path: RouterPath, method: HTTPRequest.Method)]

    /// Knows `routes`, usually the router's own `routes` once every controller has added its own.
    public init(routes: [Router<ParleyRequestContext>.RouteDescription]) {
        self.routes = routes.map { ($0.path, $0.method) }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let allowed = self.methods(forPath: request.uri.path)
        guard !allowed.isEmpty, !allowed.contains(request.method) else { return try await next(request, context) }
        var headers = HTTPFields()
        headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
        throw APIError(.methodNotAllowed, code: "method_not_allowed", message: "This method is not allowed here.", headers: headers)
    }

    /// The methods routed for `path`, in a stable order.
    func methods(forPath path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        let methods = self.routes.filter { route in
            route.path.components.count == segments.count && zip(route.path.components, segments).allSatisfy { $0 ~= $1 }
        }.map(\.method)
        return Array(Set(methods)).sorted { $0.rawValue < $1.rawValue }
    }
}
