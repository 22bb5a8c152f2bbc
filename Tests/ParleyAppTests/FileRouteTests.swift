import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// Image messages (multipart `POST /chats/{id}/messages`) and their signed file URLs (`GET /files/{id}`).
@Suite struct FileRouteTests {
    /// Every behaviour below, each with people of its own, on one application per database: building an application
    /// and its database costs more than most behaviours, and the sign-ins of all of them pass the per-address limit.
    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: TestApp.manySignIns) { app in
            try await Self.anUploadedImageIsTypedByItsBytesAndServedByItsSignedURL(app)
            try await Self.anImageNeedsNoTextAndCanBeReplayed(app)
            try await Self.aMultipartTextMessageWithoutAnImageIsATextMessage(app)
            try await Self.badMultipartUploadsAre400(app)
            try await Self.nonImagesAre415EvenWhenLabelledAsPNG(app)
            try await Self.forgedFileURLsAre404(app)
            try await Self.aFileURLWorksWithATokenTooAndKeepsItsType(app)
            try await Self.aPNGTooLargeForItsHeaderIsRefusedBeforeItIsStored(app)
            try await Self.aFileIsServedInRangesAndRevalidatedByItsTag(app)
        }
    }

    /// The file id and the query (exp, sig) of a signed file URL.
    static func parts(of url: String) throws -> (id: String, exp: String, sig: String) {
        let components = try #require(URLComponents(string: url))
        let prefix = "/api/v1/files/"
        try #require(components.path.hasPrefix(prefix), "\(url)")
        let items = components.queryItems ?? []
        try #require(Set(items.map(\.name)) == ["exp", "sig"], "\(url)")
        let exp = try #require(items.first { $0.name == "exp" }?.value)
        let sig = try #require(items.first { $0.name == "sig" }?.value)
        return (String(components.path.dropFirst(prefix.count)), exp, sig)
    }

    /// Fetches a (relative) file URL without any Authorization header.
    static func fetch(_ app: TestApp, _ url: String) async throws -> TestResponse {
        let response = try await app.request(.get, url)
        response.expectRequestID()
        return response
    }

    static func image(of response: TestResponse, status: HTTPResponse.Status = .created) throws -> [String: Any] {
        let message = try #require(try response.expectJSON(status)["message"] as? [String: Any])
        try Shapes.expectMessage(message)
        return message
    }

    static func anUploadedImageIsTypedByItsBytesAndServedByItsSignedURL(_ app: TestApp) async throws {
        let people = try await app.signIn(count: 2)
        let (alice, bob) = (people[0], people[1])
        for image in Images.accepted {
            let chatID = try #require(try await app.createGroup(alice, name: "Pictures \(image.kind)", members: [bob])["id"] as? String)
            // The client claims another type (and name): the bytes decide.
            let claimed = image.contentType != "image/gif" ? "image/gif" : "image/png"

            let response = try await app.upload(
                alice,
                to: chatID,
                image.bytes,
                filename: "evil.svg",
                contentType: claimed,
                text: "a \(image.kind)",
                clientMessageID: "img-\(image.kind)"
            )

            let message = try Self.image(of: response)
            #expect(message["kind"] as? String == "image" && message["text"] as? String == "a \(image.kind)" && message["seq"] as? Int == 1)
            #expect(message["clientMessageId"] as? String == "img-\(image.kind)")
            let file = try #require(message["image"] as? [String: Any])
            #expect(file["contentType"] as? String == image.contentType, "\(image.kind)")
            #expect(file["size"] as? Int == image.bytes.count)
            #expect(file["width"] as? Int == image.width && file["height"] as? Int == image.height, "\(image.kind)")
            let url = try #require(file["url"] as? String)
            #expect(url.hasPrefix("/api/v1/files/"), "without PARLEY_PUBLIC_URL the URL is relative")

            let served = try await Self.fetch(app, url)  // no Authorization header: the signature is the permission
            #expect(served.status == .ok, "\(served.text.prefix(300))")
            #expect(served.bytes == image.bytes)
            #expect(served.headers[.contentType]?.split(separator: ";").first.map { String($0) } == image.contentType)
            #expect(served.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")

            let seen = try #require((try await app.history(bob, chatID)["messages"] as? [[String: Any]])?.first)
            #expect((seen["image"] as? [String: Any])?["contentType"] as? String == image.contentType)
            #expect(seen["id"] as? String == message["id"] as? String)
            let seenURL = try #require((seen["image"] as? [String: Any])?["url"] as? String)
            #expect(try await Self.fetch(app, seenURL).bytes == image.bytes)
            let chats = try await app.chatPage(bob)["chats"] as? [[String: Any]]
            #expect((chats?.first?["lastMessage"] as? [String: Any])?["id"] as? String == message["id"] as? String)
        }
    }

    static func anImageNeedsNoTextAndCanBeReplayed(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        let data = Images.png(width: 4, height: 4)

        let first = try Self.image(of: try await app.upload(alice, to: chatID, data, clientMessageID: "pic-1"))
        let again = try Self.image(of: try await app.upload(alice, to: chatID, data, clientMessageID: "pic-1"), status: .ok)

        #expect((first["text"] == nil || first["text"] is NSNull) && first["kind"] as? String == "image")
        #expect(sameJSON(again, first))
        #expect(Shapes.seqs(try await app.history(bob, chatID)) == [1])
        // Blank text with an image is just the image.
        let blank = try Self.image(of: try await app.upload(alice, to: chatID, data, text: "   "))
        #expect((blank["text"] == nil || blank["text"] is NSNull) && blank["seq"] as? Int == 2)
    }

    static func aMultipartTextMessageWithoutAnImageIsATextMessage(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        var form = MultipartBody()
        form.field("text", "from a form")
        form.field("clientMessageId", "form-1")

        let message = try Self.image(of: try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: alice, form: form))

        #expect(message["kind"] as? String == "text" && message["text"] as? String == "from a form")
        #expect(message["image"] == nil || message["image"] is NSNull)
    }

    static func badMultipartUploadsAre400(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        let path = "/api/v1/chats/\(chatID)/messages"
        let png = Images.png(width: 3, height: 2)
        var nothing = MultipartBody()
        nothing.field("other", "x")
        let cases: [(String, TestResponse, String)] = [
            ("nothing", try await app.request(.post, path, as: alice, form: nothing), "invalid_text"),
            ("text-too-long", try await app.upload(alice, to: chatID, png, text: String(repeating: "a", count: 4001)), "text_too_long"),
            ("control-text", try await app.upload(alice, to: chatID, png, text: "bell \u{7}"), "invalid_text"),
            ("bad-cmid", try await app.upload(alice, to: chatID, png, clientMessageID: "has space"), "invalid_client_message_id"),
            (
                "no-boundary", try await app.request(.post, path, as: alice, raw: "--x\r\n\r\n--x--\r\n", contentType: "multipart/form-data"),
                "invalid_multipart"
            ),
            (
                "garbled",
                try await app.request(
                    .post,
                    path,
                    as: alice,
                    raw: "this is not multipart at all",
                    contentType: "multipart/form-data; boundary=abc"
                ),
                // No part at all: neither text nor image.
                "invalid_text"
            ),
        ]
        for (name, response, code) in cases {
            try response.expectError(.badRequest, code: code, "\(name)")
        }
        #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
    }

    static func nonImagesAre415EvenWhenLabelledAsPNG(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        for file in Images.refused {
            for label in ["image/png", file.declared] {
                let response = try await app.upload(alice, to: chatID, file.bytes, filename: "picture.png", contentType: label, text: "look")
                try response.expectError(.unsupportedMediaType, code: "unsupported_media_type", "\(file.kind) as \(label)")
            }
        }
        #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
    }

    /// A PNG whose width or height does not fit a 32-bit integer (PostgreSQL's `integer`) is not a PNG: refused as
    /// any other non-image, for a message and for an avatar alike, and no blob is left behind.
    static func aPNGTooLargeForItsHeaderIsRefusedBeforeItIsStored(_ app: TestApp) async throws {
        let alice = try await app.signIn()
        let blobs = URL(fileURLWithPath: app.configuration.dataDirectory).appendingPathComponent("files")
        func storedBlobs() -> Int {
            let walker = FileManager.default.enumerator(at: blobs, includingPropertiesForKeys: [.isRegularFileKey])
            return (walker?.allObjects as? [URL] ?? []).filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }.count
        }
        let before = storedBlobs()
        for (width, height) in [(UInt32(1) << 31, UInt32(1)), (1, 0xFFFF_FFFF)] {
            var form = MultipartBody()
            form.file("image", filename: "huge.png", contentType: "image/png", Images.pngHeader(width: width, height: height))
            let response = try await app.request(.post, "/api/v1/files", as: alice, form: form)
            try response.expectError(.unsupportedMediaType, code: "unsupported_media_type", "\(width)×\(height)")
        }
        #expect(storedBlobs() == before)
    }

    static func forgedFileURLsAre404(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        let firstBytes = Images.png(width: 3, height: 2)
        let secondBytes = Images.png(width: 5, height: 5)
        let first = try Self.image(of: try await app.upload(alice, to: chatID, firstBytes))
        let second = try Self.image(of: try await app.upload(alice, to: chatID, secondBytes))
        let firstURL = try #require((first["image"] as? [String: Any])?["url"] as? String)
        let secondURL = try #require((second["image"] as? [String: Any])?["url"] as? String)
        let (fileID, exp, sig) = try Self.parts(of: firstURL)
        let otherID = try Self.parts(of: secondURL).id
        #expect(fileID != otherID)
        let genuine = "/api/v1/files/\(fileID)\(query(["exp": exp, "sig": sig]))"
        #expect(try await Self.fetch(app, genuine).status == .ok, "the control: the genuine URL works")

        let flipped = (sig.first == "A" ? "B" : "A") + String(sig.dropFirst())
        let forgeries: [(String, String)] = [
            ("forged-signature", "/api/v1/files/\(fileID)\(query(["exp": exp, "sig": flipped]))"),
            ("truncated-signature", "/api/v1/files/\(fileID)\(query(["exp": exp, "sig": String(sig.dropLast())]))"),
            ("empty-signature", "/api/v1/files/\(fileID)\(query(["exp": exp, "sig": ""]))"),
            ("missing-signature", "/api/v1/files/\(fileID)\(query(["exp": exp]))"),
            ("changed-exp", "/api/v1/files/\(fileID)\(query(["exp": String(Int(exp)! + 1), "sig": sig]))"),
            ("later-exp", "/api/v1/files/\(fileID)\(query(["exp": String(Int(exp)! + 10 * 365 * 86400), "sig": sig]))"),
            ("garbage-exp", "/api/v1/files/\(fileID)\(query(["exp": "tomorrow", "sig": sig]))"),
            ("missing-exp", "/api/v1/files/\(fileID)\(query(["sig": sig]))"),
            ("no-query", "/api/v1/files/\(fileID)"),
            ("other-file", "/api/v1/files/\(otherID)\(query(["exp": exp, "sig": sig]))"),
            ("unknown-file", "/api/v1/files/\(unknownID)\(query(["exp": exp, "sig": sig]))"),
            ("malformed-id", "/api/v1/files/not-an-id\(query(["exp": exp, "sig": sig]))"),
            ("path-traversal", "/api/v1/files/..%2F..%2Fparley.sqlite\(query(["exp": exp, "sig": sig]))"),
        ]
        for (name, path) in forgeries {
            let response = try await Self.fetch(app, path)
            // A percent-encoded slash is no file id either: the same 404, never a file.
            try response.expectError(.notFound, code: "file_not_found", "\(name): \(path)")
            #expect(response.bytes != firstBytes && response.bytes != secondBytes, "\(name)")
        }
    }

    static func aFileURLWorksWithATokenTooAndKeepsItsType(_ app: TestApp) async throws {
        // Sent as GIF bytes labelled PNG: served as image/gif, never as what the client claimed.
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        let message = try Self.image(of: try await app.upload(alice, to: chatID, Images.gif3x2, contentType: "image/png"))
        let url = try #require((message["image"] as? [String: Any])?["url"] as? String)

        let served = try await app.request(.get, url, as: bob)

        #expect(served.status == .ok && served.bytes == Images.gif3x2)
        #expect(served.headers[.contentType]?.split(separator: ";").first.map { String($0) } == "image/gif")
        #expect(served.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
    }

    /// `Range` (one range: 206 with `Content-Range`; past the end: 416 with `bytes */size`; several or malformed: the
    /// whole file), `If-Range`, and `If-None-Match` against the file's tag (a file never changes).
    static func aFileIsServedInRangesAndRevalidatedByItsTag(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        let data = Images.png(width: 40, height: 30)
        let message = try Self.image(of: try await app.upload(alice, to: chatID, data))
        let url = try #require((message["image"] as? [String: Any])?["url"] as? String)
        let id = try Self.parts(of: url).id
        let size = data.count

        let whole = try await Self.fetch(app, url)
        #expect(whole.status == .ok && whole.bytes == data)
        #expect(whole.headers[.acceptRanges] == "bytes" && whole.headers[.eTag] == "\"\(id)\"")
        #expect(whole.headers[.contentLength] == String(size))

        func ranged(_ range: String, ifRange: String? = nil) async throws -> TestResponse {
            var headers: HTTPFields = [.range: range]
            if let ifRange { headers[.ifRange] = ifRange }
            let response = try await app.request(.get, url, headers: headers)
            response.expectRequestID()
            return response
        }
        let cases: [(header: String, bytes: ClosedRange<Int>)] = [
            ("bytes=0-9", 0...9), ("bytes=10-", 10...(size - 1)), ("bytes=-5", (size - 5)...(size - 1)),
            ("bytes=5-100000", 5...(size - 1)), ("bytes=-100000", 0...(size - 1)), ("bytes=\(size - 1)-\(size - 1)", (size - 1)...(size - 1)),
        ]
        for (header, bytes) in cases {
            let part = try await ranged(header)
            #expect(part.status == .partialContent, "\(header): \(part.status)")
            #expect(part.bytes == Array(data[bytes]), "\(header)")
            #expect(part.headers[.contentRange] == "bytes \(bytes.lowerBound)-\(bytes.upperBound)/\(size)", "\(header)")
            #expect(part.headers[.contentLength] == String(bytes.count), "\(header)")
        }
        for header in ["bytes=\(size)-", "bytes=-0", "bytes=999999999-"] {
            let refused = try await ranged(header)
            try refused.expectError(.rangeNotSatisfiable, code: "range_not_satisfiable")
            #expect(refused.headers[.contentRange] == "bytes */\(size)", "\(header)")
        }
        for header in ["bytes=0-1,4-5", "bytes=9-2", "bytes=a-b", "items=0-1", "bytes=--1", "bytes=99999999999999999999-"] {
            let full = try await ranged(header)
            #expect(full.status == .ok && full.bytes == data, "\(header): \(full.status)")
        }
        // If-Range: the range only if the client's copy is this file.
        #expect(try await ranged("bytes=0-9", ifRange: "\"\(id)\"").status == .partialContent)
        let other = try await ranged("bytes=0-9", ifRange: "\"something-else\"")
        #expect(other.status == .ok && other.bytes == data)
        // If-None-Match: the client's copy is current.
        for tags in ["\"\(id)\"", "W/\"\(id)\"", "\"x\", \"\(id)\"", "*"] {
            let cached = try await app.request(.get, url, headers: [.ifNoneMatch: tags])
            #expect(cached.status == .notModified && cached.bytes.isEmpty, "\(tags): \(cached.status)")
        }
        #expect(try await app.request(.get, url, headers: [.ifNoneMatch: "\"x\""]).status == .ok)
    }
}
