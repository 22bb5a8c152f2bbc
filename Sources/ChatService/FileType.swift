/// What a file of any kind is, told from its first bytes; the uploader's claim is never used. Every type it can answer is
/// listed in docs/openapi.yaml (`GET /api/v1/files/{id}`): add one there too.
enum FileType {
    /// Signatures at the start of a file and the type they mean (the common kinds people send).
    static let signatures: [(bytes: [UInt8], contentType: String)] = [
        ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "image/png"),
        ([0xFF, 0xD8, 0xFF], "image/jpeg"),
        (Array("GIF87a".utf8), "image/gif"),
        (Array("GIF89a".utf8), "image/gif"),
        (Array("%PDF-".utf8), "application/pdf"),
        ([0x50, 0x4B, 0x03, 0x04], "application/zip"),
        ([0x50, 0x4B, 0x05, 0x06], "application/zip"),
        ([0x1F, 0x8B], "application/gzip"),
        (Array("7z".utf8) + [0xBC, 0xAF, 0x27, 0x1C], "application/x-7z-compressed"),
        (Array("Rar!".utf8) + [0x1A, 0x07], "application/vnd.rar"),
        ([0x42, 0x5A, 0x68], "application/x-bzip2"),
        ([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], "application/x-xz"),
        (Array("OggS".utf8), "audio/ogg"),
        (Array("fLaC".utf8), "audio/flac"),
        (Array("ID3".utf8), "audio/mpeg"),
        ([0x1A, 0x45, 0xDF, 0xA3], "video/webm"),
        ([0x49, 0x49, 0x2A, 0x00], "image/tiff"),
        ([0x4D, 0x4D, 0x00, 0x2A], "image/tiff"),
        (Array("BM".utf8), "image/bmp"),
        (Array("SQLite format 3".utf8) + [0], "application/vnd.sqlite3"),
    ]

    /// The type `bytes` are; `text/plain; charset=utf-8` for valid UTF-8 without control characters (HTML and SVG
    /// among them: they are shown, never run); `application/octet-stream` for anything not told.
    static func detect(_ bytes: [UInt8]) -> String {
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)) {
            switch String(decoding: bytes[8..<12], as: UTF8.self) {
            case "WEBP": return "image/webp"
            case "WAVE": return "audio/wav"
            case "AVI ": return "video/x-msvideo"
            default: return "application/octet-stream"
            }
        }
        if bytes.count >= 12, Array(bytes[4..<8]) == Array("ftyp".utf8) {
            let brand = String(decoding: bytes[8..<12], as: UTF8.self)
            switch brand {
            case "heic", "heix", "mif1": return "image/heic"
            case "avif": return "image/avif"
            case "M4A ": return "audio/mp4"
            case "qt  ": return "video/quicktime"
            default: return "video/mp4"
            }
        }
        if let match = Self.signatures.first(where: { bytes.starts(with: $0.bytes) }) {
            // `BM` alone is two letters of text: a bitmap also has its size in the header.
            if match.contentType == "image/bmp", bytes.count < 26 || Self.isText(bytes) { return Self.isText(bytes) ? Self.text : Self.binary }
            return match.contentType
        }
        if bytes.count >= 2, bytes[0] == 0xFF, bytes[1] & 0xE0 == 0xE0 { return "audio/mpeg" }
        return Self.isText(bytes) ? Self.text : Self.binary
    }

    static let text = "text/plain; charset=utf-8"
    static let binary = "application/octet-stream"

    /// Valid UTF-8 (a byte order mark allowed) with no control characters but tab, line feed, carriage return and form feed.
    static func isText(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty, let text = String(validating: bytes, as: UTF8.self) else { return false }
        return !text.unicodeScalars.contains { $0.properties.generalCategory == .control && !"\t\n\r\u{0C}".unicodeScalars.contains($0) }
    }
}
