import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// How `POST /login` and `POST /verify` answer the login limits (docs/deploy.md, "Login limits"): the contract's 429
/// with `Retry-After`. The limits themselves, over simulated days, are tested in UserServiceTests/LoginLimitTests.
@Suite struct LoginLimitRouteTests {
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        // Requests of the in-process client have no peer address: trusting that, X-Forwarded-For names the client.
        let configure: @Sendable (inout ParleyConfiguration) -> Void = {
            $0.verifyIPLimit = 3
            $0.trustedProxies = ["unknown"]
        }
        try await TestApp.run(kind, configure: configure) { app in
            try await Self.wrongCodesLockTheAddressOutOfVerifyAndLogin(app)
            try await Self.codeChecksAreLimitedPerClientAddressAndIPv6Per64(app)
        }
    }

    static func from(_ address: String) -> HTTPFields {
        [.xForwardedFor: address]
    }

    static func retryAfter(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        try #require(response.headers[.retryAfter].flatMap { Int($0) }, "no Retry-After: \(response.headers)", sourceLocation: sourceLocation)
    }

    static func wrongCodesLockTheAddressOutOfVerifyAndLogin(_ app: TestApp) async throws {
        let email = "locked-\(Identifier.make().suffix(12))@example.com"
        try #require(
            try await app.request(.post, "/api/v1/login", headers: Self.from("192.0.2.10"), json: #"{"email":"\#(email)"}"#).status == .accepted
        )
        let code = try await app.loginCode(for: email)
        let wrong = String(format: "%06d", (Int(code)! + 1) % 1_000_000)
        // Each guess from its own address: the lockout is the email's, whoever guesses.
        for index in 0..<5 {
            let response = try await app.request(
                .post,
                "/api/v1/verify",
                headers: Self.from("192.0.2.\(20 + index)"),
                json: #"{"email":"\#(email)","otp":"\#(wrong)"}"#
            )
            try response.expectError(.badRequest, code: "invalid_code")
        }

        let right = try await app.request(.post, "/api/v1/verify", headers: Self.from("192.0.2.30"), json: #"{"email":"\#(email)","otp":"\#(code)"}"#)
        try right.expectError(.tooManyRequests, code: "too_many_attempts")
        #expect((1...60).contains(try Self.retryAfter(right)))
        let again = try await app.request(.post, "/api/v1/login", headers: Self.from("192.0.2.30"), json: #"{"email":"\#(email)"}"#)
        try again.expectError(.tooManyRequests, code: "too_many_attempts")
        #expect((1...60).contains(try Self.retryAfter(again)))
    }

    static func codeChecksAreLimitedPerClientAddressAndIPv6Per64(_ app: TestApp) async throws {
        let json = #"{"email":"nobody-\#(Identifier.make().suffix(12))@example.com","otp":"123456"}"#
        for host in ["1", "2", "3"] {
            try await app.request(.post, "/api/v1/verify", headers: Self.from("2001:db8:7:7::\(host)"), json: json)
                .expectError(.badRequest, code: "invalid_code")
        }

        // Another address of the same /64 is the same client.
        let limited = try await app.request(.post, "/api/v1/verify", headers: Self.from("2001:db8:7:7:abcd::1"), json: json)

        try limited.expectError(.tooManyRequests, code: "rate_limited")
        #expect((1...600).contains(try Self.retryAfter(limited)))
        try await app.request(.post, "/api/v1/verify", headers: Self.from("2001:db8:7:8::1"), json: json).expectError(
            .badRequest,
            code: "invalid_code"
        )
    }
}
