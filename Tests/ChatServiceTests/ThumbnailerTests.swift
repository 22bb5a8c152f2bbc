import Foundation
import Testing

@testable import ChatService

@Suite("Thumbnails by a separate vipsthumbnail process, or none")
struct ThumbnailerTests {
    /// A 1×1 PNG (its header is enough for the cases below, which never get a thumbnail).
    static let png = [UInt8](
        Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAAABJRU5ErkJggg==")!
    )

    @Test("without vipsthumbnail there are no thumbnails, and nothing fails")
    func absent() async {
        let none = Thumbnailer(executable: nil)
        #expect(!none.isAvailable)
        #expect(await none.thumbnail(of: Self.png) == nil)
        #expect(!Thumbnailer.onPath(environment: ["PATH": "/nonexistent"]).isAvailable)
    }

    /// A shell script standing in for vipsthumbnail (it ignores the arguments).
    static func fakeThumbnailer(_ body: String) throws -> URL {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("fake-thumbnailer-\(UUID().uuidString)")
        try "#!/bin/sh\n\(body)\n".write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        return script
    }

    @Test("what the child writes is kept only if it is a WebP within 320 px")
    func outputIsChecked() async throws {
        // A WebP header of 5 × 3 (VP8L), as a thumbnailer would write it; and the input echoed back (a PNG).
        let webp = Array("RIFF".utf8) + [0x1A, 0, 0, 0] + Array("WEBPVP8L".utf8) + [0x0D, 0, 0, 0, 0x2F, 0x04, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0]
        let webpFile = FileManager.default.temporaryDirectory.appendingPathComponent("fake-\(UUID().uuidString).webp")
        try Data(webp).write(to: webpFile)
        let writesWebP = try Self.fakeThumbnailer("cat '\(webpFile.path)'")
        let echoes = try Self.fakeThumbnailer("exec cat")
        let fails = try Self.fakeThumbnailer("echo nope; exit 1")
        defer { for url in [webpFile, writesWebP, echoes, fails] { try? FileManager.default.removeItem(at: url) } }

        let made = await Thumbnailer(executable: writesWebP).thumbnail(of: Self.png)
        #expect(made?.bytes == webp && made?.info == ImageInfo(contentType: "image/webp", width: 5, height: 3))
        #expect(await Thumbnailer(executable: echoes).thumbnail(of: Self.png) == nil, "a PNG is not the WebP asked for")
        #expect(await Thumbnailer(executable: fails).thumbnail(of: Self.png) == nil, "a failed run gives nothing")
    }

    @Test("a child that runs too long is killed, and the image has no thumbnail")
    func runawayIsKilled() async throws {
        let hangs = try Self.fakeThumbnailer("exec sleep 60")
        defer { try? FileManager.default.removeItem(at: hangs) }
        let started = ContinuousClock.now

        let made = await Thumbnailer(executable: hangs, timeout: .milliseconds(300)).thumbnail(of: Self.png)

        #expect(made == nil)
        #expect(started.duration(to: .now) < .seconds(10), "killed at its timeout, not after sleep's 60 s")
    }

    @Test("at most two children run at once: four thumbnails of 0.4 s each take two rounds")
    func boundedConcurrency() async throws {
        let slow = try Self.fakeThumbnailer("sleep 0.4; exit 1")
        defer { try? FileManager.default.removeItem(at: slow) }
        let thumbnailer = Thumbnailer(executable: slow)
        let started = ContinuousClock.now

        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { _ = await thumbnailer.thumbnail(of: Self.png) } }
        }

        #expect(started.duration(to: .now) >= .milliseconds(780), "\(started.duration(to: .now))")
    }

    @Test("an image vips cannot decode (a header alone) gives no thumbnail", .enabled(if: Thumbnailer.onPath().isAvailable))
    func undecodable() async {
        let header = Array(Self.png.prefix(33)) + [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
        #expect(await Thumbnailer.onPath().thumbnail(of: header) == nil)
    }
}
