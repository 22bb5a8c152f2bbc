import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyTestSupport
import Testing

/// `POST /login` and `POST /verify` against malformed requests: what they refuse and how they answer.
@Suite struct LoginRouteTests {
    @Test(arguments: DatabaseKind.allCases)
    func loginRejectsMalformedEmails(_ kind: DatabaseKind) async throws {
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
        try await TestApp.run(kind) { app in
            for (name, payload, code) in payloads {
                let response = try await app.request(.post, "/api/v1/login", as: nil, raw: payload)
                try response.expectError(.badRequest, code: code, "\(name)")
            }
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func loginRejectsInvalidJSON(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            for raw in [#"{"email": "#, "not json", "", #"{"email": "a@example.com"} trailing"#] {
                let response = try await app.request(.post, "/api/v1/login", as: nil, raw: raw)
                try response.expectError(.badRequest, code: "invalid_request", "\(raw)")
            }
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func loginIgnoresUnknownFields(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let json = #"{"email":"someone-\#(UUID().uuidString.prefix(8).lowercased())@example.com","remember":true,"x":[1]}"#
            let response = try await app.request(.post, "/api/v1/login", json: json)
            #expect(response.status == .accepted, "\(response.text)")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aBodyOver64KiBIs413(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let json = #"{"email":"\#(String(repeating: "a", count: 65 * 1024))@example.com"}"#
            try await app.request(.post, "/api/v1/login", json: json).expectError(.contentTooLarge, code: "payload_too_large")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aNonJSONMediaTypeIs415(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let response = try await app.request(.post, "/api/v1/login", as: nil, raw: #"{"email":"a@example.com"}"#, contentType: "text/plain")
            try response.expectError(.unsupportedMediaType, code: "unsupported_media_type")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func verifyWithoutARequestedCodeIsRejected(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let json = #"{"email":"nobody-\#(UUID().uuidString.prefix(8).lowercased())@example.com","otp":"123456"}"#
            try await app.request(.post, "/api/v1/verify", json: json).expectError(.badRequest, code: "invalid_code")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func verifyRejectsMalformedCodes(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            for otp in ["12345", "1234567", "abcdef", "12 456", ""] {
                let json = #"{"email":"someone-\#(UUID().uuidString.prefix(8).lowercased())@example.com","otp":\#(quoted(otp))}"#
                let response = try await app.request(.post, "/api/v1/verify", json: json)
                try response.expectError(.badRequest, code: "invalid_code", "\(otp)")
            }
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func verifyRejectsMalformedBodies(_ kind: DatabaseKind) async throws {
        let bodies = [
            #"{"otp":"123456"}"#, #"{"email":"a@example.com"}"#, #"{"email":"a@example.com","otp":123456}"#,
            #"{"email":5,"otp":"123456"}"#, #"{"email":"a@example.com","otp":null}"#,
        ]
        try await TestApp.run(kind) { app in
            for body in bodies {
                let response = try await app.request(.post, "/api/v1/verify", json: body)
                try response.expectError(.badRequest, code: "invalid_request", "\(body)")
            }
        }
    }
}
