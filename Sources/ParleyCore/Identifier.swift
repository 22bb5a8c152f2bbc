public import Foundation

/// Time-ordered identifiers (UUIDv7): sortable by creation time, unguessable in their random part.
public enum Identifier {
    /// A new UUIDv7 in its lower-case canonical form.
    public static func make(now: Date = Date()) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in 0..<16 { bytes[index] = generator.next() }
        let millis = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        for index in 0..<6 { bytes[index] = UInt8((millis >> (8 * (5 - UInt64(index)))) & 0xFF) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let uuid = UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
        )
        return uuid.uuidString.lowercased()
    }

    /// Whether `string` looks like an identifier this system issues (a canonical UUID), so junk never reaches a query.
    public static func isValid(_ string: String) -> Bool {
        string.utf8.count == 36 && UUID(uuidString: string) != nil
    }
}

extension Identifier {
    /// The smallest identifier made at or after `millis`: UUIDv7 text sorts by time, so this bounds a range query on ids.
    public static func lowerBound(millis: Int64) -> String {
        let hex = String(UInt64(max(0, millis)) & 0xFFFF_FFFF_FFFF, radix: 16)
        let padded = String(repeating: "0", count: 12 - hex.count) + hex
        return "\(padded.prefix(8))-\(padded.suffix(4))-0000-0000-000000000000"
    }
}
