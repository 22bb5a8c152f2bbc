import Foundation
import JWTKit
import ParleyCore
import ParleyTestSupport
import Testing

@testable import UserService

@Suite("Signing keys shared by user instances")
struct SigningKeyTests {
    @Test("instances starting at once on one database create one key and all sign with it", arguments: DatabaseKind.allCases)
    func oneKeyForEveryInstance(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let configured = try ConfiguredSigningKeys(currentPEM: nil, previousPEM: nil)
            let empty = FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(Identifier.make())").path
            let kids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<6 {
                    group.addTask { try await configured.load(database: database, dataDirectory: empty).kid }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(kids.count == 1)
            // A later start finds the same key.
            #expect(try await configured.load(database: database, dataDirectory: empty).kid == kids.first)
        }
    }

    @Test("a key file from an older data folder is adopted into the database", arguments: DatabaseKind.allCases)
    func legacyKeyFileAdopted(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-\(Identifier.make())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let old = try EdDSA.PrivateKey(curve: .ed25519)
            try old.pemRepresentation.write(to: folder.appendingPathComponent("jwt-ed25519.pem"), atomically: true, encoding: .utf8)
            let loaded = try await ConfiguredSigningKeys(currentPEM: nil, previousPEM: nil).load(database: database, dataDirectory: folder.path)
            #expect(loaded.kid == SigningKey(privateKey: old).kid)
        }
    }

    @Test("during a rotation, tokens of the previous key still verify and JWKS lists both keys")
    func rotation() async throws {
        let old = try EdDSA.PrivateKey(curve: .ed25519)
        let new = try EdDSA.PrivateKey(curve: .ed25519)
        let oldIssuer = await TokenIssuer(key: SigningKey(privateKey: old), accessTokenLifetime: 900, refreshTokenLifetime: 3600)
        let userID = Identifier.make()
        let oldToken = try await oldIssuer.accessToken(for: userID)

        // The new key is configured; the old one is kept as the previous key (here as its public PEM, "\n" escaped as in env files).
        let publicPEM = old.publicKey.pemRepresentation.replacingOccurrences(of: "\n", with: "\\n")
        let configured = try ConfiguredSigningKeys(currentPEM: new.pemRepresentation, previousPEM: publicPEM)
        let key = SigningKey(privateKey: try #require(configured.current), retired: configured.previous)
        let issuer = await TokenIssuer(key: key, accessTokenLifetime: 900, refreshTokenLifetime: 3600)
        let verifier = await issuer.verifier()
        #expect(try await verifier.userID(fromToken: oldToken) == userID)
        #expect(try await verifier.userID(fromToken: try await issuer.accessToken(for: userID)) == userID)

        let jwks = try JSONSerialization.jsonObject(with: Data(key.jwksJSON.utf8)) as? [String: Any]
        let kids = (jwks?["keys"] as? [[String: Any]])?.compactMap { $0["kid"] as? String }
        #expect(kids == [key.kid, SigningKey(privateKey: old).kid])
        // Another service verifying through JWKS accepts both.
        let remote = try await JWTKeyCollection().add(jwksJSON: key.jwksJSON)
        _ = try await remote.verify(oldToken, as: AccessTokenClaims.self)
    }

    @Test("keys that are not Ed25519 PEM are refused with the setting's name")
    func badKeys() throws {
        #expect(throws: ConfigurationError.self) { try ConfiguredSigningKeys(currentPEM: "not a key", previousPEM: nil) }
        do {
            _ = try ConfiguredSigningKeys(currentPEM: nil, previousPEM: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
            Issue.record("a bad previous key was accepted")
        } catch let error as ConfigurationError {
            #expect(error.variable == "PARLEY_JWT_PREVIOUS_KEY")
        }
    }
}
