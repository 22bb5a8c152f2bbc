import Foundation
import Hummingbird
import ParleyCore
import ParleyStore
import SQLKit

/// The user service's HTTP routes.
public struct UserController: Sendable {
    let service: UserService
    let verifier: any AccessTokenVerifying
    /// Signs avatar URLs (avatars are files of the shared blob store).
    let signer: FileURLSigner

    /// Serves `service`, authenticating with `verifier`.
    public init(service: UserService, verifier: any AccessTokenVerifying, signer: FileURLSigner) {
        self.service = service
        self.verifier = verifier
        self.signer = signer
    }

    /// Adds the routes under `/api/v1` and the JWKS.
    public func addRoutes(to router: Router<ParleyRequestContext>) {
        let jwks = self.service.tokens.key.jwksJSON
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
        let authenticated = api.group().add(middleware: AuthenticationMiddleware(verifier: self.verifier))
        authenticated.get("me", use: self.me)
        authenticated.patch("me", use: self.updateMe)
        authenticated.get("users", use: self.searchUsers)
        authenticated.get("users/:id", use: self.user)
    }

    @Sendable func login(request: Request, context: ParleyRequestContext) async throws -> EditedResponse<LoginResponse> {
        let body = try await request.decodeJSON(as: LoginRequest.self, context: context)
        let email = try EmailAddress.normalise(body.email)
        switch try await self.service.requestCode(email: email, clientIP: context.clientIP, requestID: context.requestID) {
        case .queued:
            context.logger.info("login code queued", metadata: ["email": .string(email)])
            let seconds = self.service.settings.resendSeconds
            return .init(status: .accepted, response: LoginResponse(message: "If the address can receive mail, a code is on its way.", retryAfterSeconds: seconds))
        case .ipLimited(let wait):
            throw APIError.rateLimited("Too many code requests from this address; try again later.", retryAfter: wait)
        case .tooSoon(let wait):
            throw APIError.rateLimited("A code was sent to this address a moment ago; wait before asking for another.", retryAfter: wait)
        }
    }

    @Sendable func verify(request: Request, context: ParleyRequestContext) async throws -> SessionResponse {
        let body = try await request.decodeJSON(as: VerifyRequest.self, context: context)
        let email = try EmailAddress.normalise(body.email)
        let code = body.otp.trimmingCharacters(in: .whitespaces)
        guard code.utf8.count == 6, code.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw APIError.badRequest("The code is six digits.", code: "invalid_code")
        }
        switch try await self.service.verify(email: email, code: code) {
        case .verified(let user, let access, let refresh):
            return SessionResponse(user: user.user(signer: self.signer), accessToken: access, refreshToken: refresh, expiresIn: self.service.tokens.accessTokenLifetime)
        case .noCode:
            throw APIError.badRequest("There is no valid code for this address; ask for a new one.", code: "invalid_code")
        case .expired:
            throw APIError.badRequest("The code has expired; ask for a new one.", code: "code_expired")
        case .wrongCode:
            throw APIError.badRequest("The code is not correct.", code: "invalid_code")
        case .burned:
            throw APIError.rateLimited("Too many wrong codes; ask for a new one.", retryAfter: self.service.settings.resendSeconds, code: "too_many_attempts")
        }
    }

    @Sendable func refresh(request: Request, context: ParleyRequestContext) async throws -> SessionResponse {
        let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
        guard (1...512).contains(body.refreshToken.utf8.count) else { throw APIError.unauthorized("The refresh token is not valid.", code: "invalid_token") }
        let now = Timestamp.millis()
        let outcome = try await self.service.database.transaction { sql -> (TokenIssuer.Rotation, UserRecord?) in
            let rotation = try await self.service.tokens.rotate(body.refreshToken, now: now, in: sql)
            guard case .rotated(let userID, _) = rotation else { return (rotation, nil) }
            return (rotation, try await UserStore.find(id: userID, in: sql))
        }
        switch outcome {
        case (.rotated(let userID, let newToken), let user?):
            let access = try await self.service.tokens.accessToken(for: userID)
            return SessionResponse(user: user.user(signer: self.signer), accessToken: access, refreshToken: newToken, expiresIn: self.service.tokens.accessTokenLifetime)
        case (.reused, _):
            context.logger.warning("refresh token reused; its family is revoked")
            throw APIError.unauthorized("This refresh token was already used; sign in again.", code: "token_reused")
        default:
            throw APIError.unauthorized("The refresh token is not valid.", code: "invalid_token")
        }
    }

    @Sendable func logout(request: Request, context: ParleyRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
        if (1...512).contains(body.refreshToken.utf8.count) {
            try await self.service.database.transaction { sql in
                try await self.service.tokens.revoke(body.refreshToken, now: Timestamp.millis(), in: sql)
            }
        }
        return Response(status: .noContent)
    }

    @Sendable func me(request: Request, context: ParleyRequestContext) async throws -> User {
        let userID = try context.requireUserID()
        guard let user = try await self.service.database.read({ try await UserStore.find(id: userID, in: $0) }) else {
            throw APIError.unauthorized("This account no longer exists.", code: "invalid_token")
        }
        return user.user(signer: self.signer)
    }

    @Sendable func updateMe(request: Request, context: ParleyRequestContext) async throws -> User {
        let userID = try context.requireUserID()
        let body = try await request.decodeJSON(as: UpdateProfileRequest.self, context: context)
        let name = try body.name.map(DisplayName.validate)
        let now = Timestamp.millis()
        let user = try await self.service.database.transaction { sql -> UserRecord? in
            if let name { try await UserStore.updateName(id: userID, name: name, now: now, in: sql) }
            switch body.avatarFileId {
            case .some(.none):
                try await sql.raw("UPDATE users SET avatar_file_id = NULL, updated_at = \(bind: now) WHERE id = \(bind: userID)").run()
            case .some(.some(let fileID)):
                // Only an image one uploaded oneself can become one's avatar.
                guard Identifier.isValid(fileID),
                    try await sql.raw("SELECT 1 AS one FROM files WHERE id = \(bind: fileID) AND owner_id = \(bind: userID)").first() != nil
                else { throw APIError.notFound("There is no such file.", code: "file_not_found") }
                try await sql.raw("UPDATE users SET avatar_file_id = \(bind: fileID), updated_at = \(bind: now) WHERE id = \(bind: userID)").run()
            case .none:
                break
            }
            return try await UserStore.find(id: userID, in: sql)
        }
        guard let user else { throw APIError.unauthorized("This account no longer exists.", code: "invalid_token") }
        return user.user(signer: self.signer)
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
            let records = try await self.service.database.read { sql in try await UserStore.find(ids: ids, in: sql) }
            return UserPage(users: records.map { $0.publicUser(signer: self.signer) }, nextCursor: nil)
        }
        let records = try await self.service.database.read { sql in
            try await UserStore.search(query: query, after: cursor, limit: limit + 1, in: sql)
        }
        let page = Array(records.prefix(limit))
        let next = records.count > limit ? page.last.map { OpaqueCursor.encode(UserCursor(name: $0.name.lowercased(), id: $0.id)) } : nil
        return UserPage(users: page.map { $0.publicUser(signer: self.signer) }, nextCursor: next)
    }

    @Sendable func user(request: Request, context: ParleyRequestContext) async throws -> PublicUser {
        let id = try context.parameters.require("id")
        guard Identifier.isValid(id), let user = try await self.service.database.read({ try await UserStore.find(id: id, in: $0) }) else {
            throw APIError.notFound("There is no such user.", code: "user_not_found")
        }
        return user.publicUser(signer: self.signer)
    }
}
