import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// Files of any kind (multipart field `file`): typed by their bytes, named as their uploader named them (sanitised),
/// always downloaded as attachments; and images' thumbnails and the decompression-bomb guard (issue 14).
@Suite struct AnyFileRouteTests {
    static let pdf = Array("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".utf8)
    static let zip: [UInt8] =
        [0x50, 0x4B, 0x03, 0x04, 0x14, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 20) + Array("PK".utf8) + [5, 6]
        + [UInt8](repeating: 0, count: 18)
    static let text = Array("Minutes of Tuesday\nNothing happened.\n".utf8)
    static let html = Array("<!doctype html><html><body><script>alert(document.cookie)</script></body></html>".utf8)

    /// Files up to 64 KiB, so a test can send one over the limit cheaply.
    static let smallFiles: @Sendable (inout ParleyConfiguration) -> Void = {
        TestApp.manySignIns(&$0)
        $0.maxFileBytes = 64 * 1024
    }

    @Test(arguments: DatabaseKind.allCases)
    func routeContract(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: Self.smallFiles) { app in
            try await Self.filesAreTypedByTheirBytesAndDownloadedAsAttachments(app)
            try await Self.aUnicodeNameIsEncodedWithAnASCIIFallback(app)
            try await Self.hostileNamesAreMadeHarmless(app)
            try await Self.aFileOverTheLimitIs413AndNothingIsStored(app)
            try await Self.aLyingContentTypeIsNeverServed(app)
            try await Self.imageAndFileTogetherAre400(app)
            try await Self.aDecompressionBombIsRefusedBeforeAnythingIsStored(app)
        }
    }

    /// The message's `file`, checked against the contract's shape.
    static func file(of response: TestResponse) throws -> [String: Any] {
        let message = try #require(try response.expectJSON(.created)["message"] as? [String: Any])
        try Shapes.expectMessage(message)
        #expect(message["kind"] as? String == "file")
        return try #require(message["file"] as? [String: Any])
    }

    /// The headers every download of a file (not an image) carries.
    static func expectAttachmentHeaders(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.headers[.contentDisposition]?.hasPrefix("attachment; ") == true, sourceLocation: sourceLocation)
        #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff", sourceLocation: sourceLocation)
        #expect(response.headers[.contentSecurityPolicy] == "sandbox; default-src 'none'", sourceLocation: sourceLocation)
    }

    static func filesAreTypedByTheirBytesAndDownloadedAsAttachments(_ app: TestApp) async throws {
        let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
        let cases: [(name: String, bytes: [UInt8], claimed: String, type: String)] = [
            ("report.pdf", Self.pdf, "application/x-whatever", "application/pdf"),
            ("archive.zip", Self.zip, "text/html", "application/zip"),
            ("notes.txt", Self.text, "image/png", "text/plain; charset=utf-8"),
            ("blob.bin", [0, 1, 2, 3, 0xFE, 0xFF, 7, 8], "image/jpeg", "application/octet-stream"),
            ("empty.txt", [], "text/plain", "application/octet-stream"),
        ]
        for (index, item) in cases.enumerated() {
            let file = try Self.file(of: try await app.uploadFile(alice, to: chatID, item.bytes, filename: item.name, contentType: item.claimed))
            #expect(file["name"] as? String == item.name && file["contentType"] as? String == item.type, "\(item.name): \(file)")
            #expect(file["size"] as? Int == item.bytes.count)

            let seen = try #require((try await app.history(bob, chatID)["messages"] as? [[String: Any]])?.last)
            #expect(seen["seq"] as? Int == index + 1 && seen["kind"] as? String == "file")
            let url = try #require((seen["file"] as? [String: Any])?["url"] as? String)
            let served = try await FileRouteTests.fetch(app, url)
            #expect(served.status == .ok && served.bytes == item.bytes, "\(item.name)")
            #expect(served.headers[.contentType] == item.type, "\(item.name)")
            Self.expectAttachmentHeaders(served)
            #expect(served.headers[.contentDisposition] == "attachment; filename=\"\(item.name)\"; filename*=UTF-8''\(item.name)")
        }
        // A file may carry a caption, as an image may.
        let captioned = try await app.uploadFile(alice, to: chatID, Self.pdf, filename: "a.pdf", text: "the report")
        #expect(try captioned.expectJSON(.created)["message"].flatMap { ($0 as? [String: Any])?["text"] as? String } == "the report")
    }

    static func aUnicodeNameIsEncodedWithAnASCIIFallback(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        let name = "Résumé \"final\" 100% – 日本.pdf"

        let file = try Self.file(
            of: try await app.uploadFile(alice, to: chatID, Self.pdf, filename: name.replacingOccurrences(of: "\"", with: "\\\""))
        )

        #expect(file["name"] as? String == name)
        let served = try await FileRouteTests.fetch(app, try #require(file["url"] as? String))
        Self.expectAttachmentHeaders(served)
        let encoded = "R%C3%A9sum%C3%A9%20%22final%22%20100%25%20%E2%80%93%20%E6%97%A5%E6%9C%AC.pdf"
        #expect(served.headers[.contentDisposition] == "attachment; filename=\"R_sum_ _final_ 100_ _ __.pdf\"; filename*=UTF-8''\(encoded)")
    }

    static func hostileNamesAreMadeHarmless(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        let long = String(repeating: "ab", count: 200) + ".txt"
        let cases: [(sent: String, stored: String)] = [
            ("../../x", "x"),
            ("..\\..\\windows\\evil.exe", "evil.exe"),
            ("/etc/passwd", "passwd"),
            ("..", "file"),
            ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
            ("a\u{7}b\u{1B}cd\u{200B}e\u{2028}.txt", "abcde.txt"),
            ("\u{202E}\u{200F}", "file"),
            ("  spaced.txt  ", "spaced.txt"),
            (long, String(repeating: "ab", count: 98) + ".txt"),
        ]
        for (sent, stored) in cases {
            let file = try Self.file(of: try await app.uploadFile(alice, to: chatID, Self.text, filename: sent))
            let name = try #require(file["name"] as? String)
            #expect(name == stored, "\(sent.debugDescription) → \(name.debugDescription)")
            #expect(name.count <= 200 && name.utf8.count <= 255)
            let served = try await FileRouteTests.fetch(app, try #require(file["url"] as? String))
            let disposition = try #require(served.headers[.contentDisposition])
            #expect(!disposition.contains("/") && !disposition.contains("\\") && disposition.allSatisfy(\.isASCII), "\(disposition)")
        }
    }

    static func aFileOverTheLimitIs413AndNothingIsStored(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        let blobs = try FileQuotaAndSweepTests.storedBlobs(app).count

        let response = try await app.uploadFile(alice, to: chatID, [UInt8](repeating: 7, count: 64 * 1024 + 1), filename: "big.bin")

        try response.expectError(.contentTooLarge, code: "file_too_large", "one byte over PARLEY_MAX_FILE_BYTES")
        #expect(try FileQuotaAndSweepTests.storedBlobs(app).count == blobs)
        #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
        // Exactly at the limit is fine.
        _ = try Self.file(of: try await app.uploadFile(alice, to: chatID, [UInt8](repeating: 7, count: 64 * 1024), filename: "fits.bin"))
    }

    /// HTML or SVG labelled as a PNG is a file of text, downloaded and never rendered; as an `image` it is 415.
    static func aLyingContentTypeIsNeverServed(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        let svg = Array(#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#.utf8)
        for (bytes, name) in [(Self.html, "cat.png"), (svg, "cat.svg"), (Self.html, "page.html")] {
            let file = try Self.file(of: try await app.uploadFile(alice, to: chatID, bytes, filename: name, contentType: "image/png"))
            #expect(file["contentType"] as? String == "text/plain; charset=utf-8")
            let served = try await FileRouteTests.fetch(app, try #require(file["url"] as? String))
            #expect(served.headers[.contentType] == "text/plain; charset=utf-8")
            Self.expectAttachmentHeaders(served)
            try await app.upload(alice, to: chatID, bytes, filename: name).expectError(.unsupportedMediaType, code: "unsupported_media_type")
        }
    }

    static func imageAndFileTogetherAre400(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        var form = MultipartBody()
        form.file("image", filename: "a.png", contentType: "image/png", Images.png(width: 2, height: 2))
        form.file("file", filename: "a.pdf", contentType: "application/pdf", Self.pdf)

        try await app.request(.post, "/api/v1/chats/\(chatID)/messages", as: alice, form: form).expectError(.badRequest, code: "invalid_multipart")
        #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
    }

    /// A few hundred bytes of PNG declaring 50,000 × 50,000 pixels (7.5 GB decoded): refused from its header, as a
    /// message's image and as an avatar, with nothing stored. Sent as a file it is only bytes: never decoded, downloaded.
    static func aDecompressionBombIsRefusedBeforeAnythingIsStored(_ app: TestApp) async throws {
        let (alice, _, chatID) = try await MessageRouteTests.pair(app)
        let blobs = try FileQuotaAndSweepTests.storedBlobs(app).count
        let bombs = [
            Images.pngHeader(width: 50_000, height: 50_000),
            Images.pngHeader(width: 16_385, height: 10),
            Images.pngHeader(width: 8_000, height: 5_001),  // 40,008,000 pixels
        ]
        for bomb in bombs {
            try await app.upload(alice, to: chatID, bomb, filename: "bomb.png").expectError(.contentTooLarge, code: "image_too_large")
            var form = MultipartBody()
            form.file("image", filename: "bomb.png", contentType: "image/png", bomb)
            try await app.request(.post, "/api/v1/files", as: alice, form: form).expectError(.contentTooLarge, code: "image_too_large")
        }
        #expect(try FileQuotaAndSweepTests.storedBlobs(app).count == blobs)
        #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
        // Just within the bounds: accepted (without a thumbnail: the header alone decodes to nothing).
        _ = try FileRouteTests.image(of: try await app.upload(alice, to: chatID, Images.pngHeader(width: 16_384, height: 2_441)))

        let file = try Self.file(
            of: try await app.uploadFile(alice, to: chatID, Images.pngHeader(width: 50_000, height: 50_000), filename: "bomb.png")
        )
        #expect(file["contentType"] as? String == "image/png")
        Self.expectAttachmentHeaders(try await FileRouteTests.fetch(app, try #require(file["url"] as? String)))
    }
}
