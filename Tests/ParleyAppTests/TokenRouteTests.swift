import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyTestSupport
import Testing

/// `POST /token/refresh` and `POST /logout`: rotation, replay detection, revocation, and malformed requests.
@Suite struct TokenRouteTests {
    static func refresh(_ app: TestApp, _ token: String) async throws -> TestResponse {
        try await app.request(.post, "/api/v1/token/refresh", json: #"{"refreshToken":\#(quoted(token))}"#)
    }

    @Test(arguments: DatabaseKind.allCases)
    func refreshRotatesTheRefreshToken(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let session = try await app.signIn()

            let body = try await Self.refresh(app, session.refreshToken).expectJSON(.ok)

            try Shapes.expectAuthResponse(body, email: session.email)
            #expect((body["user"] as? [String: Any])?["id"] as? String == session.userID)
            let rotated = try #require(body["refreshToken"] as? String)
            #expect(rotated != session.refreshToken)
            let access = try #require(body["accessToken"] as? String)
            let me = try await app.request(.get, "/api/v1/me", headers: [.authorization: "Bearer \(access)"]).expectJSON(.ok)
            #expect(me["id"] as? String == session.userID)
            // The new refresh token works in turn.
            _ = try await Self.refresh(app, rotated).expectJSON(.ok)
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func replayingARotatedRefreshTokenRevokesTheFamily(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let session = try await app.signIn()
            let second = try #require(try await Self.refresh(app, session.refreshToken).expectJSON(.ok)["refreshToken"] as? String)
            let newest = try #require(try await Self.refresh(app, second).expectJSON(.ok)["refreshToken"] as? String)

            try await Self.refresh(app, session.refreshToken).expectError(.unauthorized, code: "token_reused")

            // The whole family is revoked: its other tokens are no longer valid at all.
            try await Self.refresh(app, newest).expectError(.unauthorized, code: "invalid_token")
            try await Self.refresh(app, second).expectError(.unauthorized, code: "invalid_token")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aReplayRevokesOnlyItsOwnFamily(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let first = try await app.signIn()
            let other = try await app.signIn()
            let rotated = try #require(try await Self.refresh(app, first.refreshToken).expectJSON(.ok)["refreshToken"] as? String)

            try await Self.refresh(app, first.refreshToken).expectError(.unauthorized, code: "token_reused")

            try await Self.refresh(app, rotated).expectError(.unauthorized, code: "invalid_token")
            _ = try await Self.refresh(app, other.refreshToken).expectJSON(.ok)
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func logoutRevokesTheRefreshToken(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let session = try await app.signIn()

            let response = try await app.request(.post, "/api/v1/logout", json: #"{"refreshToken":\#(quoted(session.refreshToken))}"#)

            response.expectNoContent()
            try await Self.refresh(app, session.refreshToken).expectError(.unauthorized, code: "invalid_token")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func refreshWithAnUnknownTokenIs401(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            for token in ["garbage", "", String(repeating: "x", count: 200)] {
                let response = try await Self.refresh(app, token)
                try response.expectError(.unauthorized, code: "invalid_token", "\(token)")
            }
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func refreshWithAMalformedBodyIs400(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            for body in ["{}", #"{"refreshToken":5}"#, #"{"refreshToken":null}"#] {
                let response = try await app.request(.post, "/api/v1/token/refresh", json: body)
                try response.expectError(.badRequest, code: "invalid_request", "\(body)")
            }
        }
    }
}
