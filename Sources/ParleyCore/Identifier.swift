import Foundation

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
        let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                               bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        return uuid.uuidString.lowercased()
    }

    /// Whether `string` looks like an identifier this system issues (a canonical UUID), so junk never reaches a query.
    public static func isValid(_ string: String) -> Bool {
        string.utf8.count == 36 && UUID(uuidString: string) != nil
    }
}
