import Foundation
import Testing

@testable import ChatService

@Suite("Image type and size from the bytes")
struct ImageInspectorTests {
    @Test("PNG")
    func png() throws {
        let png = try #require(
            Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
        )
        #expect(ImageInspector.inspect([UInt8](png)) == ImageInfo(contentType: "image/png", width: 1, height: 1))
    }

    @Test("a PNG wider or taller than PNG allows (2^31 - 1, what a 32-bit integer column holds) is not an image")
    func pngTooLarge() {
        var header: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        header += [0x7F, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01]
        #expect(ImageInspector.inspect(header) == ImageInfo(contentType: "image/png", width: Int(Int32.max), height: 1))
        for (width, height) in [([0x80, 0, 0, 0], [0, 0, 0, 1]), ([0, 0, 0, 1], [0xFF, 0xFF, 0xFF, 0xFF])] as [([UInt8], [UInt8])] {
            #expect(ImageInspector.inspect(Array(header.prefix(16)) + width + height) == nil)
        }
    }

    @Test("GIF")
    func gif() throws {
        let gif = try #require(Data(base64Encoded: "R0lGODlhAwACAIAAAP///wAAACH5BAAAAAAALAAAAAADAAIAAAICjAsAOw=="))
        #expect(ImageInspector.inspect([UInt8](gif)) == ImageInfo(contentType: "image/gif", width: 3, height: 2))
    }

    @Test("JPEG with its frame size")
    func jpeg() {
        // SOI, an APP0 segment, then SOF0 with height 0x0010 and width 0x0020.
        var bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00]
        bytes += [0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00]
        #expect(ImageInspector.inspect(bytes) == ImageInfo(contentType: "image/jpeg", width: 32, height: 16))
    }

    @Test("WebP (lossless)")
    func webp() {
        var bytes = Array("RIFF".utf8) + [0x1A, 0, 0, 0] + Array("WEBPVP8L".utf8) + [0x0D, 0, 0, 0, 0x2F]
        // width-1 = 4, height-1 = 2 packed in 14-bit fields.
        bytes += [0x04, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0]
        #expect(ImageInspector.inspect(bytes) == ImageInfo(contentType: "image/webp", width: 5, height: 3))
    }

    @Test(
        "SVG, HTML, text and truncated headers are not images",
        arguments: [
            Array("<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".utf8), Array("<!doctype html><script>alert(1)</script>".utf8),
            Array("hello".utf8), [0x89, 0x50, 0x4E, 0x47], [],
        ]
    )
    func refusesOthers(bytes: [UInt8]) {
        #expect(ImageInspector.inspect(bytes) == nil)
    }
}
