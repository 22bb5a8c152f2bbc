import Foundation

/// The name a file is stored and downloaded under: the uploader's, made harmless.
enum FileName {
    /// The longest name kept, in characters and in UTF-8 bytes (most file systems take 255 bytes).
    static let maxCharacters = 200
    static let maxBytes = 255

    /// `raw` without any folder part, control, format (bidi overrides, zero-width) or separator characters, trimmed and
    /// cut to the bounds with its extension kept; `fallback` when nothing is left (`..`, only invisible characters).
    static func sanitized(_ raw: String?, fallback: String = "file") -> String {
        guard let raw else { return fallback }
        // Only the last path component of either separator: `../../x` and `C:\\dir\\x` are `x`.
        let last = raw.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let kept = last.precomposedStringWithCanonicalMapping.unicodeScalars.filter { scalar in
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: false
            default: true
            }
        }
        var name = String(String.UnicodeScalarView(kept)).trimmingCharacters(in: .whitespaces)
        // A name of dots alone (`.`, `..`) names a folder, not a file.
        if name.allSatisfy({ $0 == "." }) { return fallback }
        if name.count > Self.maxCharacters || name.utf8.count > Self.maxBytes { name = Self.shortened(name) }
        return name.isEmpty ? fallback : name
    }

    /// `name` cut to the bounds, keeping a short extension.
    private static func shortened(_ name: String) -> String {
        var stem = Substring(name)
        var suffix = ""
        if let dot = name.lastIndex(of: "."), dot != name.startIndex, name.distance(from: dot, to: name.endIndex) <= 16 {
            stem = name[..<dot]
            suffix = String(name[dot...])
        }
        while !stem.isEmpty, stem.count + suffix.count > Self.maxCharacters || stem.utf8.count + suffix.utf8.count > Self.maxBytes {
            stem = stem.dropLast()
        }
        return String(stem).trimmingCharacters(in: .whitespaces) + suffix
    }

    /// `Content-Disposition` for `name` (RFC 6266): an ASCII `filename` for old clients, and the exact name as
    /// `filename*` in RFC 8187 (formerly 5987) encoding.
    static func contentDisposition(_ type: String, name: String) -> String {
        "\(type); filename=\"\(Self.asciiFallback(name))\"; filename*=UTF-8''\(Self.percentEncoded(name))"
    }

    /// `name` with every character outside printable ASCII, and the quote, backslash and percent sign, as `_`.
    static func asciiFallback(_ name: String) -> String {
        String(
            name.unicodeScalars.map { scalar -> Character in
                guard scalar.isASCII, scalar.value >= 0x20, scalar.value < 0x7F, !"\"\\%".unicodeScalars.contains(scalar) else { return "_" }
                return Character(scalar)
            }
        )
    }

    /// RFC 8187 `value-chars`: attr-chars as they are, every other UTF-8 byte as `%XX`.
    static func percentEncoded(_ name: String) -> String {
        let attrChars = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~".utf8)
        let hex = Array("0123456789ABCDEF")
        return name.utf8.map { attrChars.contains($0) ? String(UnicodeScalar($0)) : "%\(hex[Int($0 >> 4)])\(hex[Int($0 & 0xF)])" }.joined()
    }
}
