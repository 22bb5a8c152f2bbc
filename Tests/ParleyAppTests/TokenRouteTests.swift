import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// `POST /token/refresh` and `POST /logout`: rotation, replay detection, revocation, and malformed requests.
@Suite struct TokenRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database: building an application
    /// and its database costs more than most behaviours, and the sign-ins of all of them pass the per-address limit.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.refreshRotatesTheRefreshToken(app)
            try await Self.replayingARotatedRefreshTokenRevokesTheFamily(app)
            try await Self.aReplayRevokesOnlyItsOwnFamily(app)
            try await Self.logoutRevokesTheRefreshToken(app)
            try await Self.refreshWithAnUnknownTokenIs401(app)
            try await Self.refreshWithAMalformedBodyIs400(app)
        }
    }

    static func refresh(_ app: TestApp, _ token: String) async throws -> TestResponse {
        try await app.request(.post, "/api/v1/token/refresh", json: #"{"refreshToken":\#(quoted(token))}"#)
    }

    static func refreshRotatesTheRefreshToken(_ app: TestApp) async throws {
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

    static func replayingARotatedRefreshTokenRevokesTheFamily(_ app: TestApp) async throws {
        let session = try await app.signIn()
        let second = try #require(try await Self.refresh(app, session.refreshToken).expectJSON(.ok)["refreshToken"] as? String)
        let newest = try #require(try await Self.refresh(app, second).expectJSON(.ok)["refreshToken"] as? String)

        try await Self.refresh(app, session.refreshToken).expectError(.unauthorized, code: "token_reused")

        // The whole family is revoked: its other tokens are no longer valid at all.
        try await Self.refresh(app, newest).expectError(.unauthorized, code: "invalid_token")
        try await Self.refresh(app, second).expectError(.unauthorized, code: "invalid_token")
    }

    static func aReplayRevokesOnlyItsOwnFamily(_ app: TestApp) async throws {
        let first = try await app.signIn()
        let other = try await app.signIn()
        let rotated = try #require(try await Self.refresh(app, first.refreshToken).expectJSON(.ok)["refreshToken"] as? String)

        try await Self.refresh(app, first.refreshToken).expectError(.unauthorized, code: "token_reused")

        try await Self.refresh(app, rotated).expectError(.unauthorized, code: "invalid_token")
        _ = try await Self.refresh(app, other.refreshToken).expectJSON(.ok)
    }

    static func logoutRevokesTheRefreshToken(_ app: TestApp) async throws {
        let session = try await app.signIn()

        let response = try await app.request(.post, "/api/v1/logout", json: #"{"refreshToken":\#(quoted(session.refreshToken))}"#)

        response.expectNoContent()
        try await Self.refresh(app, session.refreshToken).expectError(.unauthorized, code: "invalid_token")
    }

    static func refreshWithAnUnknownTokenIs401(_ app: TestApp) async throws {
        for token in ["garbage", "", String(repeating: "x", count: 200)] {
            let response = try await Self.refresh(app, token)
            try response.expectError(.unauthorized, code: "invalid_token", "\(token)")
        }
    }

    static func refreshWithAMalformedBodyIs400(_ app: TestApp) async throws {
        for body in ["{}", #"{"refreshToken":5}"#, #"{"refreshToken":null}"#] {
            let response = try await app.request(.post, "/api/v1/token/refresh", json: body)
            try response.expectError(.badRequest, code: "invalid_request", "\(body)")
        }
    }
}
