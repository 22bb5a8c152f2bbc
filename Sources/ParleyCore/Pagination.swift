/// The contract's page sizes: `limit` defaults to 50 and may be 1–200.
public enum Pagination {
    public static let defaultLimit = 50
    public static let maxLimit = 200

    /// Parses a `limit` query parameter, or a 400.
    public static func limit(_ raw: String?) throws -> Int {
        guard let raw else { return Self.defaultLimit }
        guard let value = Int(raw), (1...Self.maxLimit).contains(value) else {
            throw APIError.badRequest("`limit` must be a whole number from 1 to \(Self.maxLimit).", code: "invalid_limit")
        }
        return value
    }
}
