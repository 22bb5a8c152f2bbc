import Foundation

/// Small images built byte by byte, and files that are not images (test_chat_http.py has the same).
enum Images {
    /// A real 8-bit RGB PNG: every row is filter byte 0, then `width` pixels, in one stored (uncompressed) deflate block.
    static func png(width: Int, height: Int) -> [UInt8] {
        var rows: [UInt8] = []
        for y in 0..<height {
            rows.append(0)
            for x in 0..<width { rows += [200, UInt8((40 * x) % 256), UInt8((90 * y) % 256)] }
        }
        let length = UInt16(rows.count)
        var zlib: [UInt8] = [0x78, 0x01, 0x01, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
        zlib += rows
        zlib += Self.bigEndian(Self.adler32(rows))
        var header = Self.bigEndian(UInt32(width))
        header += Self.bigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += Self.chunk("IHDR", header)
        png += Self.chunk("IDAT", zlib)
        png += Self.chunk("IEND", [])
        return png
    }

    static let gif3x2: [UInt8] = Array(Data(base64Encoded: "R0lGODlhAwACAIAAAP///wAAACH5BAAAAAAALAAAAAADAAIAAAICjAsAOw==")!)
    /// SOI, an APP0 segment, SOF0 (8 bits, height 16, width 32, one component), EOI.
    static let jpeg32x16: [UInt8] = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00,
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00,
        0xFF, 0xD9,
    ]
    /// RIFF/WEBP with a lossless VP8L chunk: width-1 = 4 and height-1 = 2 in its 14-bit fields.
    static let webp5x3: [UInt8] = {
        var bytes: [UInt8] = Array("RIFF".utf8)
        bytes += [0x1A, 0, 0, 0]
        bytes += Array("WEBPVP8L".utf8)
        bytes += [0x0D, 0, 0, 0, 0x2F, 0x04, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0]
        return bytes
    }()

    /// Each kind of image the server accepts: bytes, the type it must be served as, width and height.
    static let accepted: [(kind: String, bytes: [UInt8], contentType: String, width: Int, height: Int)] = [
        ("png", Images.png(width: 3, height: 2), "image/png", 3, 2),
        ("jpeg", Images.jpeg32x16, "image/jpeg", 32, 16),
        ("gif", Images.gif3x2, "image/gif", 3, 2),
        ("webp", Images.webp5x3, "image/webp", 5, 3),
    ]

    /// Files that are not images, with the type a client would declare for them.
    static let refused: [(kind: String, bytes: [UInt8], declared: String)] = [
        ("svg", Array(#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="3" height="2"/></svg>"#.utf8), "image/svg+xml"),
        ("html", Array("<!doctype html><html><body><script>alert(1)</script></body></html>".utf8), "text/html"),
        ("text", Array("just some plain text, not a picture at all".utf8), "text/plain"),
        ("truncated-png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00], "image/png"),
        ("png-2^31-wide", Images.pngHeader(width: 1 << 31, height: 1), "image/png"),
        ("png-4294967295-high", Images.pngHeader(width: 1, height: 0xFFFF_FFFF), "image/png"),
    ]

    /// A PNG signature and IHDR chunk claiming `width` × `height`, then IEND: enough for anything that reads the header.
    static func pngHeader(width: UInt32, height: UInt32) -> [UInt8] {
        let header = Self.bigEndian(width) + Self.bigEndian(height) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Self.chunk("IHDR", header) + Self.chunk("IEND", [])
    }

    static func chunk(_ kind: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(kind.utf8) + data
        return Self.bigEndian(UInt32(data.count)) + typed + Self.bigEndian(Self.crc32(typed))
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return b << 16 | a
    }
}

extension Images {
    /// A real PNG of `width` × `height` RGB pixels that a decoder (libvips) can read: the rows in as many stored deflate
    /// blocks as they need (one block holds at most 65,535 bytes).
    static func decodablePNG(width: Int, height: Int) -> [UInt8] {
        var rows: [UInt8] = []
        rows.reserveCapacity(height * (1 + 3 * width))
        for y in 0..<height {
            rows.append(0)
            for x in 0..<width { rows += [UInt8(x % 256), UInt8(y % 256), 128] }
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let end = min(start + 65_535, rows.count)
            let length = UInt16(end - start)
            zlib += [end == rows.count ? 1 : 0, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            zlib += rows[start..<end]
            start = end
        } while start < rows.count
        zlib += Self.bigEndian(Self.adler32(rows))
        let header = Self.bigEndian(UInt32(width)) + Self.bigEndian(UInt32(height)) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Self.chunk("IHDR", header) + Self.chunk("IDAT", zlib) + Self.chunk("IEND", [])
    }

    /// The width and height a WebP's header declares (simple lossy, lossless or extended), or nil if it is none.
    static func webpSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count >= 30, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) else { return nil }
        switch String(decoding: bytes[12..<16], as: UTF8.self) {
        case "VP8 ":
            return ((Int(bytes[26]) | Int(bytes[27]) << 8) & 0x3FFF, (Int(bytes[28]) | Int(bytes[29]) << 8) & 0x3FFF)
        case "VP8L":
            let (b1, b2, b3, b4) = (Int(bytes[21]), Int(bytes[22]), Int(bytes[23]), Int(bytes[24]))
            return (1 + (b1 | (b2 & 0x3F) << 8), 1 + ((b2 >> 6) | b3 << 2 | (b4 & 0x0F) << 10))
        case "VP8X":
            return (
                1 + (Int(bytes[24]) | Int(bytes[25]) << 8 | Int(bytes[26]) << 16), 1 + (Int(bytes[27]) | Int(bytes[28]) << 8 | Int(bytes[29]) << 16)
            )
        default:
            return nil
        }
    }
}
