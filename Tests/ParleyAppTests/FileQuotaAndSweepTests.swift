import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// What a user's files may take (issue 12): a per-user storage quota, and the sweep that collects uploads no message
/// carries and no one has as avatar, and bytes that no file row names.
@Suite struct FileQuotaAndSweepTests {
    static let image = Images.png(width: 3, height: 2)

    /// Uploads `Self.image` outside any chat (`POST /files`, as for an avatar); the response.
    static func uploadAlone(_ app: TestApp, as session: Session) async throws -> TestResponse {
        var form = MultipartBody()
        form.file("image", filename: "a.png", contentType: "image/png", Self.image)
        return try await app.request(.post, "/api/v1/files", as: session, form: form)
    }

    /// The id and signed URL of an uploaded file.
    static func file(of response: TestResponse) throws -> (id: String, url: String) {
        let file = try #require(try response.expectJSON(.created)["file"] as? [String: Any])
        return (try #require(file["id"] as? String), try #require(file["url"] as? String))
    }

    /// The signed URL of a message's image.
    static func imageURL(of response: TestResponse) throws -> String {
        let message = try #require(try response.expectJSON(.created)["message"] as? [String: Any])
        return try #require((message["image"] as? [String: Any])?["url"] as? String)
    }

    /// Room for exactly three of `Self.image`.
    static let roomForThreeImages: @Sendable (inout ParleyConfiguration) -> Void = { $0.storageQuotaBytes = 3 * image.count }

    /// A sweep every 0.2 s, collecting what has been unclaimed for a second.
    static let sweepingOften: @Sendable (inout ParleyConfiguration) -> Void = {
        $0.fileSweepSeconds = 0.2
        // Long enough for an upload and the PATCH that makes it an avatar on a loaded machine (an image's thumbnail is
        // made in between): one second was not, in a CI run.
        $0.unclaimedFileSeconds = 3
    }

    @Test(arguments: DatabaseKind.allCases)
    func uploadsBeyondTheQuotaAre413UntilDeletingFreesRoom(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: Self.roomForThreeImages) { app in
            let people = try await app.signIn(count: 2)
            let (ann, ben) = (people[0], people[1])
            let chatID = try await app.directChat(ann, with: ben)
            // Two images in messages and one alone fill Ann's quota, whichever route takes them.
            _ = try Self.imageURL(of: try await app.upload(ann, to: chatID, Self.image))
            _ = try Self.imageURL(of: try await app.upload(ann, to: chatID, Self.image))
            _ = try Self.file(of: try await Self.uploadAlone(app, as: ann))
            let blobs = try Self.storedBlobs(app).count
            try await app.upload(ann, to: chatID, Self.image).expectError(.contentTooLarge, code: "storage_quota_exceeded", "a fourth image")
            try await Self.uploadAlone(app, as: ann).expectError(.contentTooLarge, code: "storage_quota_exceeded", "a fourth file")
            // Refused before anything is stored: no message, no bytes.
            #expect(Shapes.seqs(try await app.history(ann, chatID)) == [1, 2])
            #expect(try Self.storedBlobs(app).count == blobs)
            // Ben's quota is his own.
            _ = try Self.imageURL(of: try await app.upload(ben, to: chatID, Self.image))
            // Deleting a message erases its file, and its bytes no longer count.
            try await app.request(.delete, "/api/v1/chats/\(chatID)/messages/1", as: ann).expectJSON(.ok)
            _ = try Self.imageURL(of: try await app.upload(ann, to: chatID, Self.image))
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func theSweepCollectsUnclaimedUploadsAndBytesWithoutARowAndKeepsTheRest(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind, configure: Self.sweepingOften) { app in
            let people = try await app.signIn(count: 2)
            let (ann, ben) = (people[0], people[1])
            let chatID = try await app.directChat(ann, with: ben)
            let neverUsed = try Self.file(of: try await Self.uploadAlone(app, as: ann))
            let avatar = try Self.file(of: try await Self.uploadAlone(app, as: ann))
            try await app.request(.patch, "/api/v1/me", as: ann, json: #"{"avatarFileId":\#(quoted(avatar.id))}"#).expectJSON(.ok)
            let sent = try Self.imageURL(of: try await app.upload(ann, to: chatID, Self.image))
            // Bytes no row names, written two hours ago (a crash between the bytes and the row), a half-written file, and
            // bytes written just now (an upload whose row is on its way): the first two go, the last stays.
            let files = URL(fileURLWithPath: app.configuration.dataDirectory).appendingPathComponent("files")
            let stray = Self.path(files, Identifier.make())
            let partial = Self.path(files, Identifier.make()).appendingPathExtension("partial")
            let fresh = Self.path(files, Identifier.make())
            for url in [stray, partial, fresh] {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data("not a file of anyone".utf8).write(to: url)
            }
            let twoHoursAgo = Date().addingTimeInterval(-7200)
            for url in [stray, partial] { try FileManager.default.setAttributes([.modificationDate: twoHoursAgo], ofItemAtPath: url.path) }
            // "Just now" for the whole test: the age here is three seconds, which the waits below outlast.
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(600)], ofItemAtPath: fresh.path)

            // Within a few sweeps of the upload turning three seconds old.
            #expect(await Self.eventually { try await FileRouteTests.fetch(app, neverUsed.url).status == .notFound }, "the upload never used")
            #expect(await Self.eventually { !FileManager.default.fileExists(atPath: stray.path) }, "bytes without a row")
            #expect(!FileManager.default.fileExists(atPath: Self.path(files, neverUsed.id).path), "the unused upload's bytes")
            // The sweep walks one folder at a time: the half-written file may be in one it has yet to reach.
            #expect(await Self.eventually { !FileManager.default.fileExists(atPath: partial.path) }, "a half-written file")
            #expect(FileManager.default.fileExists(atPath: fresh.path), "fresh bytes stay")
            #expect(try await FileRouteTests.fetch(app, avatar.url).status == .ok, "the avatar stays")
            #expect(try await FileRouteTests.fetch(app, sent).status == .ok, "an image in a message stays")

            // An avatar replaced by none is released, and collected too.
            try await app.request(.patch, "/api/v1/me", as: ann, json: #"{"avatarFileId":null}"#).expectJSON(.ok)
            #expect(await Self.eventually { try await FileRouteTests.fetch(app, avatar.url).status == .notFound }, "the former avatar")
            #expect(!FileManager.default.fileExists(atPath: Self.path(files, avatar.id).path))
            #expect(try await FileRouteTests.fetch(app, sent).status == .ok, "an image in a message stays")
        }
    }

    /// Where the disk blob store keeps `key` (two levels of its last four characters).
    static func path(_ files: URL, _ key: String) -> URL {
        let shard = String(key.suffix(4))
        return files.appendingPathComponent(String(shard.prefix(2))).appendingPathComponent(String(shard.suffix(2))).appendingPathComponent(key)
    }

    static func storedBlobs(_ app: TestApp) throws -> [URL] {
        let files = URL(fileURLWithPath: app.configuration.dataDirectory).appendingPathComponent("files")
        let walker = FileManager.default.enumerator(at: files, includingPropertiesForKeys: [.isRegularFileKey])
        return (walker?.allObjects as? [URL] ?? []).filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
    }

    /// Waits up to ten seconds for `condition`.
    static func eventually(_ condition: () async throws -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}
