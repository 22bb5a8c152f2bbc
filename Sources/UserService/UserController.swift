import Foundation
public import Hummingbird
import Logging
public import ParleyCore
public import ParleyStore

/// The user service's HTTP routes: each parses its request, asks the service, and shapes the answer.
public struct UserController: Sendable {
    let service: UserService
    let verifier: any AccessTokenVerifying
    /// Checks the links of missed-message mail; without them the unsubscribe route refuses every link.
    let unsubscribeLinks: UnsubscribeLinks?
    /// Checks what other services show on the internal routes; without them those routes refuse every caller.
    let serviceCredentials: ServiceCredentials?

    /// Serves `service`, authenticating people with `verifier` and other services with `serviceCredentials`.
    public init(
        service: UserService,
        verifier: any AccessTokenVerifying,
        unsubscribeLinks: UnsubscribeLinks? = nil,
        serviceCredentials: ServiceCredentials? = nil
    ) {
        self.service = service
        self.verifier = verifier
        self.unsubscribeLinks = unsubscribeLinks
        self.serviceCredentials = serviceCredentials
    }

    /// Adds the routes under `/api/v1` and the JWKS.
    public func addRoutes(to router: Router<ParleyRequestContext>) {
        let jwks = self.service.jwksJSON
        router.get("/.well-known/jwks.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            headers[.cacheControl] = "public, max-age=300"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: jwks)))
        }
        let api = router.group("api/v1")
        api.post("login", use: self.login)
        api.post("verify", use: self.verify)
        api.post("token/refresh", use: self.refresh)
        api.post("logout", use: self.logout)
        api.get("unsubscribe", use: self.unsubscribePage)
        api.post("unsubscribe", use: self.unsubscribe)
        let authenticated = api.group().add(middleware: AuthenticationMiddleware(verifier: self.verifier))
        authenticated.get("me", use: self.me)
        authenticated.patch("me", use: self.updateMe)
        authenticated.get("users", use: self.searchUsers)
        authenticated.get("users/:id", use: self.user)
        // For other services only (nginx does not publish `/internal/`), with a service credential.
        router.get("internal/v1/users", use: self.mailContacts)
    }

    @Sendable func login(request: Request, context: ParleyRequestContext) async throws -> EditedResponse<LoginResponse> {
        let body = try await request.decodeJSON(as: LoginRequest.self, context: context)
        let email = try EmailAddress.normalise(body.email)
        try await self.service.requestCode(email: email, clientIP: context.clientIP, requestID: context.requestID)
        context.logger.info("login code queued", metadata: ["email": .string(email)])
        let seconds = self.service.settings.resendSeconds
        return .init(
            status: .accepted,
            response: LoginResponse(message: "If the address can receive mail, a code is on its way.", retryAfterSeconds: seconds)
        )
    }

    @Sendable func verify(request: Request, context: ParleyRequestContext) async throws -> SessionResponse {
        let body = try await request.decodeJSON(as: VerifyRequest.self, context: context)
        return try await self.service.verify(email: try EmailAddress.normalise(body.email), code: body.otp, clientIP: context.clientIP)
    }

    @Sendable func refresh(request: Request, context: ParleyRequestContext) async throws -> SessionResponse {
        let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
        do {
            return try await self.service.refresh(body.refreshToken)
        } catch LoginError.refreshTokenReused {
            context.logger.warning("refresh token reused; its family is revoked")
            throw LoginError.refreshTokenReused
        }
    }

    @Sendable func logout(request: Request, context: ParleyRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
        try await self.service.logout(body.refreshToken)
        return Response(status: .noContent)
    }

    @Sendable func me(request: Request, context: ParleyRequestContext) async throws -> User {
        try await self.service.profile(of: try context.requireUserID())
    }

    @Sendable func updateMe(request: Request, context: ParleyRequestContext) async throws -> User {
        let userID = try context.requireUserID()
        let body = try await request.decodeJSON(as: UpdateProfileRequest.self, context: context)
        let avatar: UserService.AvatarChange? =
            switch body.avatarFileId {
            case .some(.none): .remove
            case .some(.some(let fileID)): .set(fileID: fileID)
            case .none: nil
            }
        return try await self.service.updateProfile(
            of: userID,
            name: body.name,
            avatar: avatar,
            emailNotifications: body.emailNotifications,
            allowGroupAdds: body.allowGroupAdds
        )
    }

    @Sendable func searchUsers(request: Request, context: ParleyRequestContext) async throws -> UserPage {
        _ = try context.requireUserID()
        // Every parameter is checked, also where `ids` makes some of them unused: a bad one is a 400 on every path.
        let query = request.formQueryParameter("query") ?? ""
        guard query.count <= 100 else { throw APIError.badRequest("The query is at most 100 characters.") }
        let limit = try Pagination.limit(request.uri.queryParameters.get("limit"))
        let cursor = try request.uri.queryParameters.get("cursor").map { try OpaqueCursor.decode($0, as: UserCursor.self) }
        if let list = request.uri.queryParameters.get("ids") {
            // Look-up by id, for services that show members (the chat service when it runs apart).
            let ids = Array(Set(list.split(separator: ",").map(String.init)))
            guard ids.count <= Pagination.maxLimit, ids.allSatisfy(Identifier.isValid) else {
                throw APIError.badRequest("`ids` is a comma-separated list of at most \(Pagination.maxLimit) user ids.", code: "invalid_ids")
            }
            return UserPage(users: try await self.service.publicProfiles(of: ids), nextCursor: nil)
        }
        let (users, next) = try await self.service.search(query: query, after: cursor, limit: limit)
        return UserPage(users: users, nextCursor: next.map { OpaqueCursor.encode($0) })
    }

    @Sendable func user(request: Request, context: ParleyRequestContext) async throws -> PublicUser {
        try await self.service.publicProfile(of: try context.parameters.require("id"))
    }

    /// `GET /internal/v1/users?ids=…`: the names, addresses and mail settings of those of at most 100 users that exist,
    /// for a chat service's missed-message mailer running apart. A caller without a valid service credential (a
    /// person's access token is not one) is refused before anything is read.
    @Sendable func mailContacts(request: Request, context: ParleyRequestContext) async throws -> MailContactList {
        guard let credentials = self.serviceCredentials, credentials.verify(authorization: request.headers[.authorization]) else {
            throw APIError.unauthorized("A valid service credential is required.", code: "invalid_service_credential")
        }
        let list = request.uri.queryParameters.get("ids") ?? ""
        let ids = Array(Set(list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)))
        guard !ids.isEmpty, ids.count <= Self.mailContactsPerRequest, ids.allSatisfy(Identifier.isValid) else {
            throw APIError.badRequest(
                "`ids` is a comma-separated list of 1 to \(Self.mailContactsPerRequest) user ids.",
                code: "invalid_ids"
            )
        }
        return MailContactList(users: try await self.service.mailContacts(of: ids))
    }

    /// The most users one `GET /internal/v1/users` asks for.
    public static let mailContactsPerRequest = 100

    /// `GET /api/v1/unsubscribe?user=&sig=`: a page with one button, so that a mail scanner following the link turns
    /// nothing off. `POST` (the button, or a mail client's RFC 8058 one-click POST) turns missed-message mail off.
    @Sendable func unsubscribePage(request: Request, context: ParleyRequestContext) async throws -> Response {
        let userID = try self.unsubscribingUser(request)
        let action = "unsubscribe?user=\(userID)&sig=\(request.uri.queryParameters.get("sig") ?? "")"
        return Self.page(
            title: "Stop missed-message mail",
            body: """
                <p>Parley mails you when you miss direct messages or mentions. Stop these mails?</p>
                <form method="post" action="\(action)"><button type="submit">Stop these mails</button></form>
                <p>You can turn them on again in your profile.</p>
                """
        )
    }

    @Sendable func unsubscribe(request: Request, context: ParleyRequestContext) async throws -> Response {
        let userID = try self.unsubscribingUser(request)
        guard try await self.service.unsubscribe(userID) else { throw UserError.userNotFound }
        context.logger.info("missed-message mail turned off by its link", metadata: ["userId": .string(userID)])
        return Self.page(
            title: "Missed-message mail is off",
            body: "<p>Parley will not mail you about missed messages any more. You can turn this on again in your profile.</p>"
        )
    }

    /// The user an unsubscribe link names, when its signature is ours.
    func unsubscribingUser(_ request: Request) throws -> String {
        guard let links = self.unsubscribeLinks else { throw UserError.userNotFound }
        guard let userID = request.uri.queryParameters.get("user"), Identifier.isValid(userID),
            let signature = request.uri.queryParameters.get("sig"), signature.utf8.count <= 100,
            links.verify(userID: String(userID), signature: String(signature))
        else {
            throw APIError(.forbidden, code: "invalid_link", message: "This unsubscribe link is not valid.")
        }
        return String(userID)
    }

    /// A small HTML page; nothing user-written is in it but a checked id.
    static func page(title: String, body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
        headers[.cacheControl] = "no-store"
        let html = """
            <!doctype html>
            <html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(title)</title></head>
            <body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #1f2328;">
            <h1 style="font-size: 1.4rem;">\(title)</h1>
            \(body)
            </body></html>
            """
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}
