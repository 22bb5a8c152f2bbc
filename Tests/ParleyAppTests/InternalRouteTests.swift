import ChatService
import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import ParleyCore
import ParleyStore
import ParleyTestSupport
import Testing

/// `GET /internal/v1/users`, what a split chat service's missed-message mailer asks the user service: names, addresses
/// and mail settings, to other services only (a service credential made with the secret the instances share), never
/// to a person, whatever token they hold.
@Suite struct InternalRouteTests {
    static let path = "/internal/v1/users"

    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            let credentials = try await ServiceCredentials.load(database: app.database)
            try await Self.onlyAServiceCredentialOfThisDeploymentIsAccepted(app, credentials)
            try await Self.theContactsOfThoseThatExistAreAnswered(app, credentials)
            try await Self.theIDsAreOneToAHundredValidOnes(app, credentials)
        }
    }

    static func onlyAServiceCredentialOfThisDeploymentIsAccepted(_ app: TestApp, _ credentials: ServiceCredentials) async throws {
        let ann = try await app.signIn()
        let uri = "\(Self.path)?ids=\(ann.userID)"
        let now = Timestamp.millis()
        let otherDeployment = ServiceCredentials(key: SymmetricKey(size: .bits256))
        let good = credentials.token(now: now)
        let refused: [(String, String?)] = [
            ("none", nil),
            ("a person's access token", "Bearer \(ann.accessToken)"),
            ("a person's token in the service scheme", "ParleyService \(ann.accessToken)"),
            ("another deployment's secret", otherDeployment.authorization(now: now)),
            ("expired", credentials.authorization(now: now - ServiceCredentials.lifetime - 1_000)),
            // Good for longer than a token ever is: only someone with the secret could make it, but no caller does.
            ("from the future", credentials.authorization(now: now + 10 * 60_000)),
            ("its signature altered", "ParleyService " + good.dropLast() + (good.hasSuffix("A") ? "B" : "A")),
            ("its expiry altered", "ParleyService \(now + 30_000)." + good.split(separator: ".")[1]),
            ("no signature", "ParleyService \(now + 30_000)"),
            ("no scheme", good),
            ("another scheme", "Bearer \(good)"),
            ("a signed expiry that is not a number", "ParleyService x\(good)"),
        ]
        for (what, header) in refused {
            let headers: HTTPFields = header.map { [.authorization: $0] } ?? [:]
            let response = try await app.request(.get, uri, headers: headers)
            try response.expectError(.unauthorized, code: "invalid_service_credential")
            #expect(!String(buffer: response.body).contains(ann.email), "\(what): the address leaked")
        }
        let accepted = try await app.request(.get, uri, headers: [.authorization: "ParleyService \(good)"])
        #expect(accepted.status == .ok, "\(String(buffer: accepted.body))")
    }

    static func theContactsOfThoseThatExistAreAnswered(_ app: TestApp, _ credentials: ServiceCredentials) async throws {
        let (ann, bob) = (try await app.signIn(), try await app.signIn())
        let off = try await app.request(.patch, "/api/v1/me", as: bob, json: #"{"name":"Bob Away","emailNotifications":false}"#)
        #expect(off.status == .ok)
        let response = try await app.request(
            .get,
            "\(Self.path)?ids=\(ann.userID),\(bob.userID),\(unknownID),\(ann.userID)",
            headers: [.authorization: credentials.authorization()]
        )
        #expect(response.status == .ok)
        let users = try #require(try response.json()["users"] as? [[String: Any]])
        let byID = Dictionary(users.map { ($0["id"] as? String ?? "", $0) }, uniquingKeysWith: { first, _ in first })
        #expect(users.count == 2 && Set(byID.keys) == [ann.userID, bob.userID], "\(users)")
        #expect(Set(byID[ann.userID].map { Array($0.keys) } ?? []) == ["id", "name", "email", "missedMessageMail"])
        #expect(byID[ann.userID]?["email"] as? String == ann.email)
        #expect(byID[ann.userID]?["missedMessageMail"] as? Bool == true)
        #expect(byID[bob.userID]?["name"] as? String == "Bob Away")
        #expect(byID[bob.userID]?["email"] as? String == bob.email)
        #expect(byID[bob.userID]?["missedMessageMail"] as? Bool == false)
    }

    static func theIDsAreOneToAHundredValidOnes(_ app: TestApp, _ credentials: ServiceCredentials) async throws {
        let hundred = (0..<100).map { _ in Identifier.make() }
        let refused = [
            "", "?ids=", "?ids=,", "?ids=not-an-id", "?ids=\(unknownID),", "?ids=\(unknownID)%00",
            "?ids=" + (hundred + [Identifier.make()]).joined(separator: ","),
        ]
        for query in refused {
            let response = try await app.request(.get, Self.path + query, headers: [.authorization: credentials.authorization()])
            try response.expectError(.badRequest, code: "invalid_ids")
        }
        let most = try await app.request(
            .get,
            "\(Self.path)?ids=\(hundred.joined(separator: ","))",
            headers: [.authorization: credentials.authorization()]
        )
        #expect(most.status == .ok)
        #expect((try most.json()["users"] as? [Any])?.isEmpty == true)
    }

    /// The split chat service's client of the route, on a port: what it answers, and a chat service with another
    /// deployment's secret is refused (its mailer's pass fails, and the mail stays owed for the next).
    @Test(arguments: DatabaseKind.allCases)
    func aChatServiceRunningApartAsksWithItsCredential(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, testing: .live) { app in
            let port = try #require(app.client.port)
            let ann = try await app.signIn()
            let directory = HTTPUserDirectory(
                baseURL: "http://127.0.0.1:\(port)",
                credentials: try await ServiceCredentials.load(database: app.database)
            )
            let contacts = try await directory.mailContacts(of: [ann.userID, unknownID])
            #expect(contacts.count == 1)
            #expect(contacts[ann.userID]?.email == ann.email && contacts[ann.userID]?.missedMessageMail == true)
            // More than one request holds: the ids go in batches of a hundred.
            let many = try await directory.mailContacts(of: (0..<150).map { _ in Identifier.make() } + [ann.userID])
            #expect(Array(many.keys) == [ann.userID])

            let stranger = HTTPUserDirectory(
                baseURL: "http://127.0.0.1:\(port)",
                credentials: ServiceCredentials(key: SymmetricKey(size: .bits256))
            )
            await #expect(throws: UserDirectoryError.unavailable) { try await stranger.mailContacts(of: [ann.userID]) }
        }
    }
}
