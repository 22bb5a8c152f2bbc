import AsyncHTTPClient
import Foundation
import HTTPTypes
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import ParleyCore

/// A verifier for a chat service running apart from the user service: the user service's public keys, read from its JWKS.
func remoteVerifier(configuration: ParleyConfiguration, logger: Logger) async throws -> any AccessTokenVerifying {
    guard let url = configuration.userServiceURL else {
        throw ConfigurationError(
            "PARLEY_USER_SERVICE_URL",
            "must be set when the chat service runs on its own (it verifies tokens with the user service's JWKS)"
        )
    }
    return try await JWKSVerifier.load(url: url + "/.well-known/jwks.json", logger: logger)
}

/// Verifies access tokens with keys fetched from a JWKS URL; fetches again (at most every 30 s) when a token names an unknown key.
actor JWKSVerifier: AccessTokenVerifying {
    private let url: String
    private let logger: Logger
    private var verifier: JWTAccessTokenVerifier?
    private var lastFetch: ContinuousClock.Instant?

    private init(url: String, logger: Logger) {
        self.url = url
        self.logger = logger
    }

    /// A verifier for `url`; the first fetch is tried now, and retried on demand if the user service is not up yet.
    static func load(url: String, logger: Logger) async throws -> JWKSVerifier {
        let verifier = JWKSVerifier(url: url, logger: logger)
        await verifier.refresh()
        return verifier
    }

    func verify(token: String) async throws -> VerifiedAccessToken {
        // Not loaded yet (the user service was not up): try again, but at most once a second whatever the request rate.
        if self.verifier == nil, self.lastFetch.map({ ContinuousClock.now - $0 > .seconds(1) }) ?? true { await self.refresh() }
        guard let verifier = self.verifier else {
            throw APIError(.serviceUnavailable, code: "auth_unavailable", message: "Tokens cannot be checked right now; try again shortly.")
        }
        do {
            return try await verifier.verify(token: token)
        } catch let error as APIError where error.code == "invalid_token" {
            // A key rotation: the token may name a key published after our last fetch.
            guard let last = self.lastFetch, ContinuousClock.now - last > .seconds(30) else { throw error }
            await self.refresh()
            guard let fresh = self.verifier else { throw error }
            return try await fresh.verify(token: token)
        }
    }

    private func refresh() async {
        self.lastFetch = .now
        do {
            var request = HTTPClientRequest(url: self.url)
            request.method = .GET
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            guard response.status == .ok else { throw APIError.internalError }
            let body = try await response.body.collect(upTo: 1 << 20)
            let keys = try await JWTKeyCollection().add(jwksJSON: String(buffer: body))
            self.verifier = JWTAccessTokenVerifier(keys: keys)
        } catch {
            self.logger.warning("cannot fetch the user service's JWKS", metadata: ["url": .string(self.url), "error": "\(error)"])
        }
    }
}
