public import Foundation

/// Base64 with the URL alphabet and no padding: tokens, key ids, signatures and cursors.
public enum Base64URL {
    /// Encodes `data`.
    public static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes `text`, or nil when it is not base64url.
    public static func decode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// Comparison whose time depends only on the length, for secrets.
public enum ConstantTime {
    /// Whether `lhs` and `rhs` are equal, looking at every byte whatever the first difference.
    public static func equals(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

/// Page cursors: a position encoded as base64url JSON, opaque to clients.
public enum OpaqueCursor {
    /// The cursor for `position`.
    public static func encode(_ position: some Encodable) -> String {
        Base64URL.encode((try? JSONEncoder().encode(position)) ?? Data())
    }

    /// The position in `cursor`, or a 400 when it is not one of ours.
    public static func decode<Position: Decodable>(_ cursor: String, as type: Position.Type) throws -> Position {
        guard cursor.utf8.count <= 1024, let data = Base64URL.decode(cursor), let position = try? JSONDecoder().decode(type, from: data) else {
            throw APIError.badRequest("The cursor is not valid.", code: "invalid_cursor")
        }
        return position
    }
}

/// The JSON encoding of every response and event: URLs with plain slashes.
public enum ParleyJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    /// `value` as JSON text.
    public static func text(_ value: some Encodable) -> String {
        (try? String(decoding: Self.encoder.encode(value), as: UTF8.self)) ?? "null"
    }
}
