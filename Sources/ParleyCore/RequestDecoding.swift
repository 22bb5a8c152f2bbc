import Foundation
public import Hummingbird

extension Request {
    /// Decodes a JSON body: 415 unless the body says it is JSON, 413 past the context's limit, 400 when it does not fit `type`.
    public func decodeJSON<T: Decodable>(as type: T.Type, context: ParleyRequestContext) async throws -> T {
        let contentType = self.headers[.contentType]?.lowercased() ?? ""
        guard contentType.hasPrefix("application/json") || contentType.hasPrefix("application/") && contentType.contains("+json") else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "Send the body as application/json.")
        }
        return try await self.decode(as: type, context: context)
    }

    /// A query parameter as browsers and HTML forms encode it: `+` is a space, `%XX` an escaped byte.
    public func formQueryParameter(_ name: String) -> String? {
        guard let query = self.uri.query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            guard key == name else { continue }
            let value = parts.count > 1 ? String(parts[1]) : ""
            return value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        return nil
    }
}
