/// Unguessable session and socket ids: 15 random bytes as 20 base64url characters.
enum RandomID {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// A new id from the system's secure generator.
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        // Three random bytes make four symbols; five rounds give 20 symbols without padding.
        for _ in 0..<5 {
            let value = UInt32(truncatingIfNeeded: generator.next()) & 0xFF_FFFF
            for shift in stride(from: 18, through: 0, by: -6) {
                bytes.append(Self.alphabet[Int((value >> UInt32(shift)) & 0x3F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
