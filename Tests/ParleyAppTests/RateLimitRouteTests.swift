import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// Per-user rates (issue 12): a burst, then 429 `rate_limited` with `Retry-After` over HTTP and the same error in the ack;
/// one user's limit is not another's. Every rate here refills once a minute, so a slow run cannot refill a bucket between
/// two requests; the refill itself is tested with a given clock in `UserRateLimitsTests`.
@Suite(.serialized)
struct RateLimitRouteTests {
    static let tight: @Sendable (inout ParleyConfiguration) -> Void = { configuration in
        configuration.rateLimits.messages = Rate(burst: 3, perSecond: 1.0 / 60)
        configuration.rateLimits.groups = Rate(burst: 1, perSecond: 1.0 / 60)
        configuration.rateLimits.uploads = Rate(burst: 1, perSecond: 1.0 / 60)
        configuration.rateLimits.typing = Rate(burst: 2, perSecond: 1.0 / 60)
    }

    static func expectRateLimited(_ response: TestResponse, atMost seconds: Int, _ label: String) throws {
        try response.expectError(.tooManyRequests, code: "rate_limited")
        let wait = try #require(response.headers[.retryAfter].flatMap { Int($0) }, "\(label): no Retry-After")
        #expect((1...seconds).contains(wait), "\(label): Retry-After \(wait)")
    }

    @Test(arguments: DatabaseKind.allCases)
    func sendsChangesGroupsAndUploadsHaveABurstThenA429(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: Self.tight) { app in
            let people = try await app.signIn(count: 3)
            let (ann, ben, cat) = (people[0], people[1], people[2])
            let chatID = try await app.directChat(ann, with: ben)
            // Three sends, then an edit: the fourth action of the burst is refused, whatever it is; nothing is stored.
            for index in 1...3 { try await app.send(ann, to: chatID, "m\(index)") }
            try Self.expectRateLimited(
                try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: ann, json: #"{"text":"one too many"}"#),
                atMost: 60,
                "a fourth send"
            )
            try Self.expectRateLimited(
                try await app.request(.patch, "/api/v1/chats/\(chatID)/messages/1", as: ann, json: #"{"text":"edited"}"#),
                atMost: 60,
                "an edit"
            )
            #expect(Shapes.seqs(try await app.history(ann, chatID)) == [1, 2, 3])
            // Ben's bucket is his own.
            try await app.send(ben, to: chatID, "ben is fine")

            // One group, then a 429 for about a minute.
            try await app.createGroup(cat, name: "first", members: [ann, ben])
            let second = try await app.request(
                .post,
                "/api/v1/chats",
                as: cat,
                json: jsonText(["name": "second", "memberIds": [ann.userID]])
            )
            try Self.expectRateLimited(second, atMost: 60, "a second group")

            // One image, then a 429 (a text message is not an upload).
            let upload = { () async throws -> TestResponse in
                var form = MultipartBody()
                form.field("clientMessageId", UUID().uuidString.lowercased())
                form.file("image", filename: "a.png", contentType: "image/png", Images.png(width: 3, height: 2))
                return try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: ben, form: form)
            }
            #expect(try await upload().status == .created)
            try Self.expectRateLimited(try await upload(), atMost: 60, "a second image")
            // A file of any other kind takes from the same allowance, and so does an avatar.
            let file = try await app.uploadFile(ben, to: chatID, Array("minutes".utf8), filename: "minutes.txt")
            try Self.expectRateLimited(file, atMost: 60, "a file after an image")
            var avatar = MultipartBody()
            avatar.file("image", filename: "me.png", contentType: "image/png", Images.png(width: 3, height: 2))
            try Self.expectRateLimited(try await app.request(.post, "/api/v1/files", as: ben, form: avatar), atMost: 60, "an avatar after an image")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func socketEventsAreRefusedInTheirAck(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: Self.tight) { app in
            let people = try await app.signIn(count: 2)
            let chatID = try await app.directChat(people[0], with: people[1])
            let socket = try await PollingSocket.connect(app, token: people[0].accessToken)
            func ack(_ id: Int, _ event: String) async throws -> [String: Any] {
                try await socket.send(#"42\#(id)["\#(event)",{"chatId":"\#(chatID)","text":"t\#(id)"}]"#)
                let answer = try await socket.receive { $0.hasPrefix("43\(id)[") }
                let arguments = try #require(try JSONSerialization.jsonObject(with: Data(answer.dropFirst(2 + String(id).count).utf8)) as? [Any])
                return try #require(arguments.first as? [String: Any])
            }
            for id in 1...3 { #expect(try await ack(id, "sendMessage")["ok"] as? Bool == true, "send \(id)") }
            let refused = try #require(try await ack(4, "sendMessage")["error"] as? [String: Any])
            #expect(refused["code"] as? String == "rate_limited" && (refused["message"] as? String)?.contains("try again") == true)
            for id in 5...6 { #expect(try await ack(id, "typing")["ok"] as? Bool == true, "typing \(id)") }
            let typing = try #require(try await ack(7, "typing")["error"] as? [String: Any])
            #expect(typing["code"] as? String == "rate_limited")
        }
    }
}
