/// What an uploaded file is, decided from its bytes alone: the client's Content-Type is never trusted.
struct ImageInfo: Equatable, Sendable {
    var contentType: String
    var width: Int?
    var height: Int?
}

enum ImageInspector {
    /// The largest image accepted, in pixels and on either side: a bigger one is refused before anything decodes it (a
    /// few kilobytes of PNG can declare 50,000 × 50,000 pixels, 7.5 GB once decoded). 40 megapixels is more than any
    /// phone camera takes; 16,384 is WebP's own bound, and a long panorama's.
    static let maxPixels = 40_000_000
    static let maxSide = 16_384

    /// Whether an image of `info`'s dimensions may be decoded (to make its thumbnail, or in a browser). Frames of a GIF
    /// larger than its screen count too.
    static func isDecodable(_ info: ImageInfo, bytes: [UInt8]) -> Bool {
        guard let width = info.width, let height = info.height, width > 0, height > 0 else { return false }
        var sides = (width, height)
        if info.contentType == "image/gif" {
            guard let frames = Self.gifFrameBounds(bytes) else { return false }
            sides = (max(width, frames.0), max(height, frames.1))
        }
        return sides.0 <= Self.maxSide && sides.1 <= Self.maxSide && sides.0 * sides.1 <= Self.maxPixels
    }

    /// The widest and highest frame of a GIF (its image descriptors), or nil when its blocks do not hold together.
    static func gifFrameBounds(_ bytes: [UInt8]) -> (Int, Int)? {
        guard bytes.count >= 13 else { return nil }
        var index = 13
        if bytes[10] & 0x80 != 0 { index += 3 << (Int(bytes[10] & 0x07) + 1) }
        var bounds = (0, 0)
        func skipSubBlocks() -> Bool {
            while index < bytes.count {
                let length = Int(bytes[index])
                index += 1 + length
                if length == 0 { return true }
            }
            return false
        }
        while index < bytes.count {
            switch bytes[index] {
            case 0x21:
                index += 2
                guard skipSubBlocks() else { return bounds }
            case 0x2C:
                guard index + 10 <= bytes.count else { return bounds }
                let width = Int(bytes[index + 5]) | Int(bytes[index + 6]) << 8
                let height = Int(bytes[index + 7]) | Int(bytes[index + 8]) << 8
                bounds = (max(bounds.0, width), max(bounds.1, height))
                let packed = bytes[index + 9]
                index += 10
                if packed & 0x80 != 0 { index += 3 << (Int(packed & 0x07) + 1) }
                index += 1  // the LZW minimum code size
                guard skipSubBlocks() else { return bounds }
            case 0x3B:
                return bounds
            default:
                // Not a block a GIF has: a decoder stops here too.
                return bounds
            }
        }
        return bounds
    }

    /// JPEG, PNG, GIF or WebP with dimensions when the header carries them; nil for anything else (SVG, HTML, …).
    static func inspect(_ bytes: [UInt8]) -> ImageInfo? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            guard bytes.count >= 24 else { return nil }
            let (width, height) = (Self.bigEndian32(bytes, 16), Self.bigEndian32(bytes, 20))
            // PNG allows at most 2^31 - 1 either way (and the files table stores a 32-bit integer): a larger header is not a PNG.
            guard width <= Int(Int32.max), height <= Int(Int32.max) else { return nil }
            return ImageInfo(contentType: "image/png", width: width, height: height)
        }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            let size = Self.jpegSize(bytes)
            return ImageInfo(contentType: "image/jpeg", width: size?.0, height: size?.1)
        }
        if bytes.starts(with: Array("GIF87a".utf8)) || bytes.starts(with: Array("GIF89a".utf8)) {
            guard bytes.count >= 10 else { return nil }
            return ImageInfo(contentType: "image/gif", width: Int(bytes[6]) | Int(bytes[7]) << 8, height: Int(bytes[8]) | Int(bytes[9]) << 8)
        }
        if bytes.count >= 16, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) {
            let size = Self.webpSize(bytes)
            return ImageInfo(contentType: "image/webp", width: size?.0, height: size?.1)
        }
        return nil
    }

    static func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> Int {
        Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
    }

    /// Walks the JPEG segments to the first start-of-frame marker.
    static func jpegSize(_ bytes: [UInt8]) -> (Int, Int)? {
        var index = 2
        while index + 9 < bytes.count {
            guard bytes[index] == 0xFF else { return nil }
            let marker = bytes[index + 1]
            if marker == 0xFF {
                index += 1
                continue
            }
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) {
                index += 2
                continue
            }
            let length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
            if (0xC0...0xCF).contains(marker), marker != 0xC4, marker != 0xC8, marker != 0xCC {
                let height = Int(bytes[index + 5]) << 8 | Int(bytes[index + 6])
                let width = Int(bytes[index + 7]) << 8 | Int(bytes[index + 8])
                return (width, height)
            }
            guard length >= 2 else { return nil }
            index += 2 + length
        }
        return nil
    }

    /// Reads the size from a WebP's first chunk (lossy VP8, lossless VP8L or extended VP8X).
    static func webpSize(_ bytes: [UInt8]) -> (Int, Int)? {
        guard bytes.count >= 30 else { return nil }
        let chunk = String(decoding: bytes[12..<16], as: UTF8.self)
        switch chunk {
        case "VP8 ":
            let width = (Int(bytes[26]) | Int(bytes[27]) << 8) & 0x3FFF
            let height = (Int(bytes[28]) | Int(bytes[29]) << 8) & 0x3FFF
            return (width, height)
        case "VP8L":
            guard bytes[20] == 0x2F else { return nil }
            let b1 = Int(bytes[21])
            let b2 = Int(bytes[22])
            let b3 = Int(bytes[23])
            let b4 = Int(bytes[24])
            let width = 1 + (b1 | (b2 & 0x3F) << 8)
            let height = 1 + ((b2 >> 6) | b3 << 2 | (b4 & 0x0F) << 10)
            return (width, height)
        case "VP8X":
            let width = 1 + (Int(bytes[24]) | Int(bytes[25]) << 8 | Int(bytes[26]) << 16)
            let height = 1 + (Int(bytes[27]) | Int(bytes[28]) << 8 | Int(bytes[29]) << 16)
            return (width, height)
        default:
            return nil
        }
    }
}
