import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// `GET`/`PATCH /me` and the user directory (`GET /users`, `GET /users/{id}`).
@Suite struct ProfileRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database: building an application
    /// and its database costs more than most behaviours, and the sign-ins of all of them pass the per-address limit.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.meReadsTheUserFreshAfterPatch(app)
            try await Self.patchMeAcceptsNamesOf1To50Characters(app)
            try await Self.patchMeRejectsInvalidNames(app)
            try await Self.usersSearchFindsNamesBySubstringCaseInsensitivelyWithoutEmails(app)
            try await Self.usersSearchPagesWithACursor(app)
            try await Self.getUserByIDReturnsThePublicUser(app)
            try await Self.getUnknownUserIs404(app)
        }
    }

    static func meReadsTheUserFreshAfterPatch(_ app: TestApp) async throws {
        let session = try await app.signIn()
        let before = try await app.request(.get, "/api/v1/me", as: session).expectJSON(.ok)

        let patched = try await app.request(.patch, "/api/v1/me", as: session, json: #"{"name":"  Renamed Person  "}"#).expectJSON(.ok)
        let me = try await app.request(.get, "/api/v1/me", as: session).expectJSON(.ok)

        Shapes.expectUser(patched, email: session.email)
        #expect(patched["name"] as? String == "Renamed Person")
        #expect(me["name"] as? String == "Renamed Person")
        #expect(me["id"] as? String == session.userID)
        #expect(me["createdAt"] as? String == before["createdAt"] as? String)
    }

    static func patchMeAcceptsNamesOf1To50Characters(_ app: TestApp) async throws {
        let session = try await app.signIn()
        for name in [String(repeating: "x", count: 50), String(repeating: "é", count: 50), "Ada Lovelace", "李小龍", "x"] {
            let patched = try await app.request(.patch, "/api/v1/me", as: session, json: jsonText(["name": name])).expectJSON(.ok)
            #expect(patched["name"] as? String == name)
        }
    }

    static func patchMeRejectsInvalidNames(_ app: TestApp) async throws {
        let bodies: [(String, String, String)] = [
            ("empty", #"{"name":""}"#, "invalid_name"),
            ("blank", #"{"name":"   "}"#, "invalid_name"),
            ("51-chars", #"{"name":"\#(String(repeating: "x", count: 51))"}"#, "invalid_name"),
            ("newline", #"{"name":"line\nbreak"}"#, "invalid_name"),
            ("tab", #"{"name":"tab\there"}"#, "invalid_name"),
            ("nul", #"{"name":"nul\u0000byte"}"#, "invalid_name"),
            ("escape", #"{"name":"escape\u001b[31m"}"#, "invalid_name"),
            ("del", #"{"name":"delete\u007f"}"#, "invalid_name"),
            ("bidi-override", #"{"name":"\u202Egnp.exe"}"#, "invalid_name"),
            ("bidi-isolate", #"{"name":"\u2066x\u2069"}"#, "invalid_name"),
            ("number", #"{"name":5}"#, "invalid_request"),
            ("list", #"{"name":["list"]}"#, "invalid_request"),
        ]
        let session = try await app.signIn()
        let name = try await app.request(.get, "/api/v1/me", as: session).expectJSON(.ok)["name"] as? String
        for (label, body, code) in bodies {
            let response = try await app.request(.patch, "/api/v1/me", as: session, json: body)
            try response.expectError(.badRequest, code: code, "\(label)")
            #expect(try await app.request(.get, "/api/v1/me", as: session).expectJSON(.ok)["name"] as? String == name, "\(label)")
        }
    }

    static func usersSearchFindsNamesBySubstringCaseInsensitivelyWithoutEmails(_ app: TestApp) async throws {
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8)).lowercased()
        let people = try await app.signIn(count: 3)
        let (alpha, beta, searcher) = (people[0], people[1], people[2])
        _ = try await app.request(.patch, "/api/v1/me", as: alpha, json: jsonText(["name": "Quillon\(tag)Alpha"])).expectJSON(.ok)
        _ = try await app.request(.patch, "/api/v1/me", as: beta, json: jsonText(["name": "Brannigan \(tag) beta"])).expectJSON(.ok)

        func search(_ text: String) async throws -> Set<String> {
            let response = try await app.request(.get, "/api/v1/users\(query(["query": text]))", as: searcher)
            let body = try response.expectJSON(.ok)
            #expect(!response.text.contains(alpha.email) && !response.text.contains(beta.email), "search leaked an email")
            let users = try #require(body["users"] as? [[String: Any]])
            for user in users { Shapes.expectPublicUser(user) }
            return Set(users.compactMap { $0["id"] as? String })
        }

        let both: Set = [alpha.userID, beta.userID]
        #expect(try await search(tag.uppercased()).isSuperset(of: both))
        #expect(try await search(tag).intersection(both) == both)
        #expect(try await search("quillon\(tag)").contains(alpha.userID))
        #expect(!(try await search("quillon\(tag)").contains(beta.userID)))
        #expect(try await search("\(tag)aLPHA").contains(alpha.userID))
        #expect(try await search("BRANNIGAN \(tag.uppercased()) B").intersection(both) == [beta.userID])
        // Users are found by name, never by their email address.
        #expect(!(try await search(alpha.email).contains(alpha.userID)))
    }

    static func usersSearchPagesWithACursor(_ app: TestApp) async throws {
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(10)).lowercased()
        let people = try await app.signIn(count: 3)
        for (index, person) in people.enumerated() {
            _ = try await app.request(.patch, "/api/v1/me", as: person, json: jsonText(["name": "Pager \(tag) \(index)"])).expectJSON(.ok)
        }

        let first = try await app.request(.get, "/api/v1/users\(query(["query": tag, "limit": "2"]))", as: people[0]).expectJSON(.ok)
        let firstUsers = try #require(first["users"] as? [[String: Any]])
        #expect(firstUsers.count == 2)
        let cursor = try #require(first["nextCursor"] as? String)
        #expect(!cursor.isEmpty)
        let second = try await app.request(.get, "/api/v1/users\(query(["query": tag, "limit": "2", "cursor": cursor]))", as: people[0])
            .expectJSON(.ok)

        let secondUsers = try #require(second["users"] as? [[String: Any]])
        #expect(secondUsers.count == 1)
        #expect(second["nextCursor"] == nil || second["nextCursor"] is NSNull)
        #expect(Set((firstUsers + secondUsers).compactMap { $0["id"] as? String }) == Set(people.map(\.userID)))
    }

    static func getUserByIDReturnsThePublicUser(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (target, reader) = (people[0], people[1])
        let name = try await app.request(.get, "/api/v1/me", as: target).expectJSON(.ok)["name"] as? String

        let response = try await app.request(.get, "/api/v1/users/\(target.userID)", as: reader)

        let body = try response.expectJSON(.ok)
        Shapes.expectPublicUser(body)
        #expect(body["id"] as? String == target.userID && body["name"] as? String == name)
        #expect(!response.text.contains(target.email))
    }

    static func getUnknownUserIs404(_ app: TestApp) async throws {
        let reader = try await app.signIn()
        try await app.request(.get, "/api/v1/users/\(UUID().uuidString.lowercased())", as: reader).expectError(.notFound, code: "user_not_found")
        try await app.request(.get, "/api/v1/users/not-an-id", as: reader).expectError(.notFound, code: "user_not_found")
    }
}
