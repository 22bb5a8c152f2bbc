import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import ParleyCore
import ParleyTestSupport
import Testing

/// Every authenticated route against a missing or bad token, a forged token, a caller who is not a member of the chat,
/// and another user's id: the contract answers 401 for the first two and 404 for chats one is not in, never 403,
/// never anything that tells a stranger a chat exists.
@Suite struct AuthorizationMatrixTests {
    /// One authenticated route: `{chat}`, `{user}` and `{file}` in the path or body are filled in from the ``World``.
    struct Route: Sendable, CustomStringConvertible {
        enum Body: Sendable {
            case none
            case json(String)
            case image
        }

        var method: HTTPRequest.Method
        var path: String
        var body: Body = .none

        var description: String { "\(self.method) \(self.path)\(self.isMultipart ? " (multipart)" : "")" }
        var isMultipart: Bool {
            guard case .image = self.body else { return false }
            return true
        }
        var isChatRoute: Bool { self.path.contains("{chat}") }
    }

    /// Every route that needs an access token, with a body it would accept.
    static let routes: [Route] = [
        Route(method: .get, path: "/api/v1/me"),
        Route(method: .patch, path: "/api/v1/me", body: .json(#"{"name":"x"}"#)),
        Route(method: .get, path: "/api/v1/users?query=a"),
        Route(method: .get, path: "/api/v1/users/{user}"),
        Route(method: .post, path: "/api/v1/files", body: .image),
        Route(method: .post, path: "/api/v1/chats", body: .json(#"{"userId":"{user}"}"#)),
        Route(method: .get, path: "/api/v1/chats"),
        Route(method: .get, path: "/api/v1/chats/{chat}"),
        Route(method: .get, path: "/api/v1/chats/{chat}/messages"),
        Route(method: .post, path: "/api/v1/chats/{chat}/messages", body: .json(#"{"text":"sneaky","clientMessageId":"s"}"#)),
        Route(method: .post, path: "/api/v1/chats/{chat}/messages", body: .image),
        Route(method: .post, path: "/api/v1/chats/{chat}/read", body: .json(#"{"seq":1}"#)),
        Route(method: .patch, path: "/api/v1/chats/{chat}", body: .json(#"{"name":"Taken over"}"#)),
        Route(method: .post, path: "/api/v1/chats/{chat}/members", body: .json(#"{"userIds":["{user}"]}"#)),
        Route(method: .delete, path: "/api/v1/chats/{chat}/members/{user}"),
        Route(method: .put, path: "/api/v1/chats/{chat}/members/{user}/role", body: .json(#"{"role":"admin"}"#)),
        Route(method: .get, path: "/api/v1/blocks"),
        Route(method: .put, path: "/api/v1/blocks/{user}"),
        Route(method: .delete, path: "/api/v1/blocks/{user}"),
    ]

    /// Two members of a direct chat with one message, and someone who is in no chat.
    struct World {
        var alice: Session
        var bob: Session
        var mallory: Session
        var chatID: String

        static func make(_ app: TestApp) async throws -> World {
            let people = try await app.signIn(count: 3)
            let chatID = try await app.directChat(people[0], with: people[1])
            try await app.send(people[0], to: chatID, "hi")
            return World(alice: people[0], bob: people[1], mallory: people[2], chatID: chatID)
        }

        /// Sends `route` with `headers`, for the chat `chatID`.
        func send(_ route: Route, in app: TestApp, headers: HTTPFields, chatID: String? = nil) async throws -> TestResponse {
            let fill = { (text: String) in
                text.replacingOccurrences(of: "{chat}", with: chatID ?? self.chatID).replacingOccurrences(of: "{user}", with: self.bob.userID)
            }
            var headers = headers
            switch route.body {
            case .none:
                return try await app.client.execute(uri: fill(route.path), method: route.method, headers: headers, body: nil)
            case .json(let json):
                headers[.contentType] = "application/json"
                let body = ByteBuffer(string: fill(json))
                return try await app.client.execute(uri: fill(route.path), method: route.method, headers: headers, body: body)
            case .image:
                var form = MultipartBody()
                form.field("text", "sneaky")
                form.field("clientMessageId", UUID().uuidString.lowercased())
                form.file("image", filename: "a.png", contentType: "image/png", Images.png(width: 3, height: 2))
                headers[.contentType] = form.contentType
                return try await app.client.execute(uri: fill(route.path), method: route.method, headers: headers, body: form.buffer)
            }
        }

        /// The chat still holds its one message and no one else.
        func expectUntouched(_ app: TestApp) async throws {
            #expect(Shapes.seqs(try await app.history(self.alice, self.chatID)) == [1])
            let chat = try await app.chat(self.alice, self.chatID)
            #expect(Set(Shapes.readState(chat).keys) == [self.alice.userID, self.bob.userID])
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func everyRouteWithoutAUsableAuthorizationHeaderIs401(_ kind: DatabaseKind) async throws {
        let headers: [(String, HTTPFields, String)] = [
            ("none", [:], "unauthorized"),
            ("empty", [.authorization: ""], "invalid_token"),
            ("bearer-only", [.authorization: "Bearer"], "invalid_token"),
            ("bearer-space", [.authorization: "Bearer "], "invalid_token"),
            ("garbage", [.authorization: "Bearer garbage"], "invalid_token"),
            ("basic", [.authorization: "Basic dXNlcjpwYXNz"], "invalid_token"),
            ("other-scheme", [.authorization: "Token abc"], "invalid_token"),
        ]
        try await TestApp.run(kind) { app in
            let world = try await World.make(app)
            for route in Self.routes {
                for (name, fields, code) in headers {
                    let response = try await world.send(route, in: app, headers: fields)
                    #expect(response.status == .unauthorized, "\(route), \(name)")
                    try response.expectError(.unauthorized, code: code, "\(route), \(name)")
                }
            }
            try await world.expectUntouched(app)
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func everyRouteRefusesForgedAndExpiredTokens(_ kind: DatabaseKind) async throws {
        let key = TestSigningKey()
        try await TestApp.run(kind, configure: TestApp.signing(with: key.pem)) { app in
            let world = try await World.make(app)
            let forgeries = try CompactJWT.forgeries(of: world.alice.accessToken, key: key)
            for route in Self.routes {
                for forgery in forgeries {
                    let response = try await world.send(route, in: app, headers: [.authorization: "Bearer \(forgery.token)"])
                    try response.expectError(.unauthorized, code: forgery.code, "\(route), \(forgery.name)")
                }
            }
            try await world.expectUntouched(app)
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aTokenMintedWithTheConfiguredKeyIsAccepted(_ kind: DatabaseKind) async throws {
        // The control for the forgeries: the same claims, signed with the server's own key, pass.
        let key = TestSigningKey()
        try await TestApp.run(kind, configure: TestApp.signing(with: key.pem)) { app in
            let owner = try await app.signIn()
            let token = try CompactJWT(owner.accessToken)
            let now = Int(Date().timeIntervalSince1970)
            var payload = token.payload
            payload["iat"] = now
            payload["exp"] = now + 300
            let minted = try key.sign(header: token.headerWithoutAlgorithm, payload: payload)
            let me = try await app.request(.get, "/api/v1/me", headers: [.authorization: "Bearer \(minted)"]).expectJSON(.ok)
            #expect(me["id"] as? String == owner.userID)
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aNonMemberIsAnsweredChatNotFoundOnEveryChatRoute(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let world = try await World.make(app)
            for route in Self.routes where route.isChatRoute {
                let cases: [(String, Session, String)] = [
                    ("non-member", world.mallory, world.chatID),
                    ("unknown chat", world.alice, unknownID),
                    ("unknown v4 chat", world.alice, UUID().uuidString.lowercased()),
                    ("malformed chat id", world.alice, "not-an-id"),
                ]
                for (name, session, chatID) in cases {
                    let response = try await world.send(route, in: app, headers: session.headers, chatID: chatID)
                    try response.expectError(.notFound, code: "chat_not_found", "\(route), \(name)")
                    #expect(!response.text.contains("hi\""), "\(route), \(name): \(response.text)")
                }
            }
            // The same with query bounds on history.
            let after = try await app.request(.get, "/api/v1/chats/\(world.chatID)/messages?after=0", as: world.mallory)
            try after.expectError(.notFound, code: "chat_not_found")
            try await world.expectUntouched(app)
            #expect(try await app.chatIDs(world.mallory) == [])
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aTokenOfAnUnknownUserSeesNothing(_ kind: DatabaseKind) async throws {
        let key = TestSigningKey()
        try await TestApp.run(kind, configure: TestApp.signing(with: key.pem)) { app in
            let world = try await World.make(app)
            let token = try CompactJWT(world.alice.accessToken)
            let now = Int(Date().timeIntervalSince1970)
            var payload = token.payload
            payload["sub"] = UUID().uuidString.lowercased()
            payload["iat"] = now
            payload["exp"] = now + 300
            let ghost: HTTPFields = [.authorization: "Bearer \(try key.sign(header: token.headerWithoutAlgorithm, payload: payload))"]

            let list = try await app.request(.get, "/api/v1/chats", headers: ghost).expectJSON(.ok)
            #expect((list["chats"] as? [Any])?.isEmpty == true)
            #expect(Set(list.keys).isSubset(of: ["chats", "nextCursor"]) && (list["nextCursor"] == nil || list["nextCursor"] is NSNull))
            try await app.request(.get, "/api/v1/chats/\(world.chatID)", headers: ghost).expectError(.notFound, code: "chat_not_found")
            let json = #"{"text":"boo","clientMessageId":"g"}"#
            try await app.request(.post, "/api/v1/chats/\(world.chatID)/messages", headers: ghost, json: json)
                .expectError(.notFound, code: "chat_not_found")
            try await app.request(.get, "/api/v1/me", headers: ghost).expectError(.unauthorized, code: "invalid_token")
            try await world.expectUntouched(app)
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func anotherUsersFileCannotBecomeOnesAvatar(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let world = try await World.make(app)
            var form = MultipartBody()
            form.file("image", filename: "a.png", contentType: "image/png", Images.png(width: 3, height: 2))
            let uploaded = try await app.request(.post, "/api/v1/files", as: world.bob, form: form).expectJSON(.created)
            let fileID = try #require((uploaded["file"] as? [String: Any])?["id"] as? String)

            let response = try await app.request(.patch, "/api/v1/me", as: world.alice, json: #"{"avatarFileId":\#(quoted(fileID))}"#)

            try response.expectError(.notFound, code: "file_not_found")
            let me = try await app.request(.get, "/api/v1/me", as: world.alice).expectJSON(.ok)
            #expect(me["avatarUrl"] == nil || me["avatarUrl"] is NSNull)
            // Bob, whose file it is, may.
            let bobs = try await app.request(.patch, "/api/v1/me", as: world.bob, json: #"{"avatarFileId":\#(quoted(fileID))}"#).expectJSON(.ok)
            #expect(bobs["avatarUrl"] is String)
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func wrongMethodsAreMethodNotAllowedWithAllowInTheErrorShape(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let world = try await World.make(app)
            let cases: [(HTTPRequest.Method, String, allow: String)] = [
                (.delete, "/api/v1/chats/\(world.chatID)", "GET, PATCH"), (.put, "/api/v1/chats/\(world.chatID)/messages", "GET, POST"),
                (.patch, "/api/v1/chats", "GET, POST"), (.get, "/api/v1/chats/\(world.chatID)/read", "POST"),
            ]
            for (method, path, allow) in cases {
                let response = try await app.request(method, path, as: world.alice)
                try response.expectError(.methodNotAllowed, code: "method_not_allowed", "\(method) \(path)")
                #expect(response.headers[.allow] == allow, "\(method) \(path)")
            }
        }
    }
}
