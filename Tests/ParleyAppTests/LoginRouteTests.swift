import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// `POST /login` and `POST /verify` against malformed requests: what they refuse and how they answer.
@Suite struct LoginRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database: building an application
    /// and its database costs more than most behaviours, and the sign-ins of all of them pass the per-address limit.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.loginRejectsMalformedEmails(app)
            try await Self.loginRejectsInvalidJSON(app)
            try await Self.loginIgnoresUnknownFields(app)
            try await Self.aBodyOver64KiBIs413(app)
            try await Self.aNonJSONMediaTypeIs415(app)
            try await Self.verifyWithoutARequestedCodeIsRejected(app)
            try await Self.verifyRejectsMalformedCodes(app)
            try await Self.verifyRejectsMalformedBodies(app)
        }
    }

    static func loginRejectsMalformedEmails(_ app: TestApp) async throws {
        let payloads: [(String, String, String)] = [
            ("no-at", #"{"email":"aliceexample.com"}"#, "invalid_email"),
            ("space-inside", #"{"email":"ali ce@example.com"}"#, "invalid_email"),
            ("300-chars", #"{"email":"\#(String(repeating: "a", count: 288))@example.com"}"#, "invalid_email"),
            ("empty", #"{"email":""}"#, "invalid_email"),
            ("blank", #"{"email":"   "}"#, "invalid_email"),
            ("no-local-part", #"{"email":"@example.com"}"#, "invalid_email"),
            ("no-domain", #"{"email":"alice@"}"#, "invalid_email"),
            ("two-ats", #"{"email":"alice@@example.com"}"#, "invalid_email"),
            ("number", #"{"email":5}"#, "invalid_request"),
            ("null", #"{"email":null}"#, "invalid_request"),
            ("bool", #"{"email":true}"#, "invalid_request"),
            ("list", #"{"email":["alice@example.com"]}"#, "invalid_request"),
            ("object", #"{"email":{"address":"alice@example.com"}}"#, "invalid_request"),
            ("missing", "{}", "invalid_request"),
            ("wrong-key", #"{"mail":"alice@example.com"}"#, "invalid_request"),
            ("array-body", "[]", "invalid_request"),
            ("string-body", #""alice@example.com""#, "invalid_request"),
            ("null-body", "null", "invalid_request"),
        ]
        for (name, payload, code) in payloads {
            let response = try await app.request(.post, "/api/v1/login", as: nil, raw: payload)
            try response.expectError(.badRequest, code: code, "\(name)")
        }
    }

    static func loginRejectsInvalidJSON(_ app: TestApp) async throws {
        for raw in [#"{"email": "#, "not json", "", #"{"email": "a@example.com"} trailing"#] {
            let response = try await app.request(.post, "/api/v1/login", as: nil, raw: raw)
            try response.expectError(.badRequest, code: "invalid_request", "\(raw)")
        }
    }

    static func loginIgnoresUnknownFields(_ app: TestApp) async throws {
        let json = #"{"email":"someone-\#(UUID().uuidString.prefix(8).lowercased())@example.com","remember":true,"x":[1]}"#
        let response = try await app.request(.post, "/api/v1/login", json: json)
        #expect(response.status == .accepted, "\(response.text)")
    }

    static func aBodyOver64KiBIs413(_ app: TestApp) async throws {
        let json = #"{"email":"\#(String(repeating: "a", count: 65 * 1024))@example.com"}"#
        try await app.request(.post, "/api/v1/login", json: json).expectError(.contentTooLarge, code: "payload_too_large")
    }

    static func aNonJSONMediaTypeIs415(_ app: TestApp) async throws {
        let response = try await app.request(.post, "/api/v1/login", as: nil, raw: #"{"email":"a@example.com"}"#, contentType: "text/plain")
        try response.expectError(.unsupportedMediaType, code: "unsupported_media_type")
    }

    static func verifyWithoutARequestedCodeIsRejected(_ app: TestApp) async throws {
        let json = #"{"email":"nobody-\#(UUID().uuidString.prefix(8).lowercased())@example.com","otp":"123456"}"#
        try await app.request(.post, "/api/v1/verify", json: json).expectError(.badRequest, code: "invalid_code")
    }

    static func verifyRejectsMalformedCodes(_ app: TestApp) async throws {
        for otp in ["12345", "1234567", "abcdef", "12 456", ""] {
            let json = #"{"email":"someone-\#(UUID().uuidString.prefix(8).lowercased())@example.com","otp":\#(quoted(otp))}"#
            let response = try await app.request(.post, "/api/v1/verify", json: json)
            try response.expectError(.badRequest, code: "invalid_code", "\(otp)")
        }
    }

    static func verifyRejectsMalformedBodies(_ app: TestApp) async throws {
        let bodies = [
            #"{"otp":"123456"}"#, #"{"email":"a@example.com"}"#, #"{"email":"a@example.com","otp":123456}"#,
            #"{"email":5,"otp":"123456"}"#, #"{"email":"a@example.com","otp":null}"#,
        ]
        for body in bodies {
            let response = try await app.request(.post, "/api/v1/verify", json: body)
            try response.expectError(.badRequest, code: "invalid_request", "\(body)")
        }
    }
}
