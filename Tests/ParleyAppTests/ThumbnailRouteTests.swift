import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// Thumbnails of images (made by libvips's `vipsthumbnail`, which scripts/test installs), and files of every kind
/// following their message: erased with it, counted against the quota (issue 14).
@Suite struct ThumbnailRouteTests {
    /// Whether `vipsthumbnail` is on the PATH (without it the server makes no thumbnails, by design).
    static let hasVips = ProcessInfo.processInfo.environment["PATH", default: "/usr/bin"].split(separator: ":").contains {
        FileManager.default.isExecutableFile(atPath: "\($0)/vipsthumbnail")
    }

    @Test(arguments: DatabaseKind.allCases)
    func anImageGetsAThumbnailAtMost320PixelsOnItsLongSide(_ kind: DatabaseKind) async throws {
        try #require(Self.hasVips, "install libvips-tools (scripts/test does): the server makes thumbnails with vipsthumbnail")
        try await TestApp.run(kind) { app in
            let (alice, bob, chatID) = try await MessageRouteTests.pair(app)
            let png = Images.decodablePNG(width: 1000, height: 600)

            let message = try FileRouteTests.image(of: try await app.upload(alice, to: chatID, png))

            let image = try #require(message["image"] as? [String: Any])
            let url = try #require(image["url"] as? String)
            let thumbnailURL = try #require(image["thumbnailUrl"] as? String)
            #expect(thumbnailURL != url && image["width"] as? Int == 1000 && image["height"] as? Int == 600)
            let thumbnail = try await FileRouteTests.fetch(app, thumbnailURL)
            #expect(thumbnail.status == .ok && thumbnail.headers[.contentType] == "image/webp")
            #expect(thumbnail.headers[.contentDisposition] == nil, "a thumbnail is shown in place")
            let size = try #require(Images.webpSize(thumbnail.bytes), "a WebP")
            #expect(size.width == 320 && size.height == 192, "\(size)")
            #expect(thumbnail.bytes.count < png.count / 10)
            // The reader sees the same thumbnail; the full image is still there.
            let seen = try #require((try await app.history(bob, chatID)["messages"] as? [[String: Any]])?.first?["image"] as? [String: Any])
            #expect(try await FileRouteTests.fetch(app, try #require(seen["thumbnailUrl"] as? String)).bytes == thumbnail.bytes)
            #expect(try await FileRouteTests.fetch(app, url).bytes == png)

            // An image that already fits is its own thumbnail.
            let small = try FileRouteTests.image(of: try await app.upload(alice, to: chatID, Images.decodablePNG(width: 300, height: 20)))
            let smallImage = try #require(small["image"] as? [String: Any])
            #expect(smallImage["thumbnailUrl"] as? String == smallImage["url"] as? String)

            // Deleting the message erases the image and its thumbnail, rows and bytes.
            let blobs = try FileQuotaAndSweepTests.storedBlobs(app).count
            try await app.request(.delete, "/api/v1/chats/\(chatID)/messages/1", as: alice).expectJSON(.ok)
            #expect(try await FileRouteTests.fetch(app, url).status == .notFound)
            #expect(try await FileRouteTests.fetch(app, thumbnailURL).status == .notFound)
            #expect(try FileQuotaAndSweepTests.storedBlobs(app).count == blobs - 2)
        }
    }

    /// An image uploaded and never used (`POST /files`, no avatar, no message) is collected with its thumbnail: both
    /// rows and both blobs.
    @Test(arguments: DatabaseKind.allCases)
    func theSweepCollectsAnUnusedImageWithItsThumbnail(_ kind: DatabaseKind) async throws {
        try #require(Self.hasVips, "install libvips-tools (scripts/test does): the server makes thumbnails with vipsthumbnail")
        try await TestApp.run(kind, configure: FileQuotaAndSweepTests.sweepingOften) { app in
            let ann = try await app.signIn()
            let before = try FileQuotaAndSweepTests.storedBlobs(app).count
            var form = MultipartBody()
            form.file("image", filename: "big.png", contentType: "image/png", Images.decodablePNG(width: 700, height: 400))

            let upload = try FileQuotaAndSweepTests.file(of: try await app.request(.post, "/api/v1/files", as: ann, form: form))

            #expect(try FileQuotaAndSweepTests.storedBlobs(app).count == before + 2, "the image and its thumbnail")
            #expect(await FileQuotaAndSweepTests.eventually { try await FileRouteTests.fetch(app, upload.url).status == .notFound })
            #expect(await FileQuotaAndSweepTests.eventually { try FileQuotaAndSweepTests.storedBlobs(app).count == before }, "both blobs")
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func aFileCountsAgainstTheQuotaAndIsErasedWithItsMessage(_ kind: DatabaseKind) async throws {
        let pdf = AnyFileRouteTests.pdf
        let roomForTwo: @Sendable (inout ParleyConfiguration) -> Void = { $0.storageQuotaBytes = 2 * pdf.count }
        try await TestApp.run(kind, configure: roomForTwo) { app in
            let (alice, _, chatID) = try await MessageRouteTests.pair(app)
            let first = try AnyFileRouteTests.file(of: try await app.uploadFile(alice, to: chatID, pdf, filename: "one.pdf"))
            _ = try AnyFileRouteTests.file(of: try await app.uploadFile(alice, to: chatID, pdf, filename: "two.pdf"))
            let blobs = try FileQuotaAndSweepTests.storedBlobs(app)

            try await app.uploadFile(alice, to: chatID, pdf, filename: "three.pdf").expectError(.contentTooLarge, code: "storage_quota_exceeded")
            #expect(try FileQuotaAndSweepTests.storedBlobs(app).count == blobs.count)

            // Deleting the first message erases its file (its URL and its bytes) and frees its room.
            let url = try #require(first["url"] as? String)
            let tombstone = try #require(
                try await app.request(.delete, "/api/v1/chats/\(chatID)/messages/1", as: alice).expectJSON(.ok)["message"] as? [String: Any]
            )
            #expect(tombstone["kind"] as? String == "deleted" && tombstone["file"] == nil)
            #expect(try await FileRouteTests.fetch(app, url).status == .notFound)
            let fileID = try FileRouteTests.parts(of: url).id
            let blob = try #require(blobs.first { $0.lastPathComponent == fileID })
            #expect(!FileManager.default.fileExists(atPath: blob.path), "the bytes are erased")
            #expect(try FileQuotaAndSweepTests.storedBlobs(app).count == blobs.count - 1)
            _ = try AnyFileRouteTests.file(of: try await app.uploadFile(alice, to: chatID, pdf, filename: "three.pdf"))
        }
    }
}
