import ChatService
import Hummingbird
public import ParleyCore
public import SocketIOServer
import UserService
import WebApp

/// The route collections one process serves; those its role does not run stay nil.
struct RouteSet: Sendable {
    /// `/health` and `/metrics`, on every role.
    var operations: OperationsController
    var users: UserController?
    var chat: ChatController?
    /// Socket.IO at `/socket.io/`, with the chat service.
    var sockets: SocketIOServer?
}

/// The router of a process: the middleware every request passes, then the routes of its role.
func buildRouter(role: ServiceRole, configuration: ParleyConfiguration, routes: RouteSet) -> Router<ParleyRequestContext> {
    let router = Router(context: ParleyRequestContext.self)
    // First: the request's trace (its `traceparent`, or a new one) is current for everything after, log lines included.
    // Signed links' signatures stay out of exported spans' `url.query`: they are capabilities.
    router.add(middleware: TracingMiddleware(redactingQueryParameters: ["sig", "token", "access_token"]))
    router.add(middleware: ServerFaultSpanMiddleware())
    router.add(middleware: RequestIDMiddleware())
    if !configuration.trustedProxies.isEmpty {
        router.add(middleware: ForwardedClientMiddleware(trustedProxies: configuration.trustedProxies))
    }
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorMiddleware())
    if role.runsChatService {
        WebApp.addMiddleware(to: router)
    }
    routes.operations.addRoutes(to: router)
    routes.users?.addRoutes(to: router)
    routes.chat?.addRoutes(to: router)
    routes.sockets?.addRoutes(to: router)
    // Added last, it sees only requests no route took: a routed path with another method is 405 with `Allow`.
    router.add(middleware: MethodNotAllowedMiddleware(routes: router.routes))
    return router
}

/// Socket.IO sessions count against their client's limits by the address ``ForwardedClientMiddleware`` settled on.
extension ParleyRequestContext: SocketIOClientAddressContext {
    public var socketIOClientAddress: String? { self.clientIP }
}
