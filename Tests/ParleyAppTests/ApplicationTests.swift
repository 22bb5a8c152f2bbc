import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyApp
import ParleyTestSupport
import Testing

/// The application a role builds, served in-process: health, the sign-in flow, and the shape of its answers.
@Suite struct ApplicationTests {
    @Test(arguments: DatabaseKind.allCases)
    func healthReportsTheDatabaseUp(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            #expect(try await Self.becomesHealthy(app))
            let response = try await app.request(.get, "/health")
            #expect(response.status == .ok)
            let body = try response.json()
            #expect(body["status"] as? String == "healthy")
            #expect((body["checks"] as? [String: String])?["database"] == "up")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aPersonSignsInWithTheMailedCodeAndReadsTheirProfile(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let email = "ann-\(UUID().uuidString.prefix(8).lowercased())@example.com"
            let session = try await app.signIn(email)
            let me = try await app.request(.get, "/api/v1/me", as: session)
            #expect(me.status == .ok)
            let body = try me.json()
            #expect(body["id"] as? String == session.userID)
            #expect(body["email"] as? String == email)
            #expect(body["name"] as? String == String(email.prefix { $0 != "@" }))
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aRouteWithoutATokenIsUnauthorizedInTheContractsShape(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            try await app.request(.get, "/api/v1/me").expectError(.unauthorized, code: "unauthorized")
            try await app.request(.get, "/api/v1/chats").expectError(.unauthorized, code: "unauthorized")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aRoutedPathWithAnotherMethodIs405WithAllow(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let trace = try await app.request(.trace, "/api/v1/me")
            try trace.expectError(.methodNotAllowed, code: "method_not_allowed")
            #expect(trace.headers[.allow] == "GET, PATCH")
            let delete = try await app.request(.delete, "/api/v1/chats")
            try delete.expectError(.methodNotAllowed, code: "method_not_allowed")
            #expect(delete.headers[.allow] == "GET, POST")
            try await app.request(.delete, "/api/v1/nothing-here").expectError(.notFound, code: "not_found")
        }
    }

    /// Whether `/health` comes to answer 200 (20 tries, half a second apart). It answers 503 when the database does not
    /// answer within 2 s, which a fresh PostgreSQL pool's first connection can take on a loaded machine (seen once with
    /// the whole suite running).
    static func becomesHealthy(_ app: TestApp) async throws -> Bool {
        for _ in 0..<20 {
            if try await app.request(.get, "/health").status == .ok { return true }
            try await Task.sleep(for: .milliseconds(500))
        }
        return false
    }

    @Test(arguments: DatabaseKind.allCases)
    func theSplitRolesServeOnlyTheirOwnRoutes(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, role: .user) { app in
            #expect(try await Self.becomesHealthy(app))
            #expect(try await app.request(.get, "/.well-known/jwks.json").status == .ok)
            try await app.request(.get, "/api/v1/me").expectError(.unauthorized, code: "unauthorized")
            try await app.request(.get, "/api/v1/chats").expectError(.notFound, code: "not_found")
            try await app.request(.get, "/socket.io/?EIO=4&transport=polling").expectError(.notFound, code: "not_found")
        }
        try await TestApp.run(kind, role: .mail) { app in
            #expect(try await Self.becomesHealthy(app))
            try await app.request(.post, "/api/v1/login", json: #"{"email":"a@example.com"}"#).expectError(.notFound, code: "not_found")
        }
    }
}
