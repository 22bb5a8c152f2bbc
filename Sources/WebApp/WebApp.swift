public import Foundation
import HTTPTypes
public import Hummingbird
public import ParleyCore

/// The web app: static HTML, CSS and JavaScript modules shipped inside the binary's resource bundle, served at `/`.
public enum WebApp {
    /// The folder the files are served from: `PARLEY_WEB_DIR` when set (for working on the app), else the bundled copy.
    public static func folder(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let override = environment["PARLEY_WEB_DIR"], !override.isEmpty { return override }
        return (Bundle.module.resourcePath ?? ".") + "/Public"
    }

    /// Adds the middleware that serves the app for any GET that no route answered, with the app's security headers.
    public static func addMiddleware(to router: Router<ParleyRequestContext>, folder: String = WebApp.folder()) {
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: FileMiddleware(folder, cacheControl: .init([(MediaType(type: .any), [.noCache])]), searchForIndexHtml: true))
    }
}

/// A strict Content-Security-Policy and friends on the app's pages: no inline script, nothing from other origins.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = ParleyRequestContext

    static let policy = [
        "default-src 'self'", "img-src 'self' blob: data:", "connect-src 'self' ws: wss:", "style-src 'self'", "script-src 'self'",
        "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
    ].joined(separator: "; ")

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if response.headers[.contentType]?.hasPrefix("text/html") == true {
            response.headers[.contentSecurityPolicy] = Self.policy
            response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
            response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        }
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return response
    }
}
