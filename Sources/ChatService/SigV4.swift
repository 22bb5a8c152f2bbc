import Crypto
import Foundation

/// AWS Signature Version 4 in the `Authorization` header (docs.aws.amazon.com, "Create a signed AWS API request"), as S3
/// wants it: the path is encoded once, never normalised (an object key is any bytes), the query and the headers are
/// canonicalised, and the payload's SHA-256 is signed.
struct SigV4 {
    let accessKeyID: String
    let secretAccessKey: String
    /// Temporary credentials' token: sent and signed as `x-amz-security-token`.
    let sessionToken: String?
    let region: String
    let service: String

    /// The SHA-256 of no bytes, as the payload hash of a request without a body.
    static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The headers to send with a request: `headers` (which name `host`) plus `x-amz-date`, perhaps
    /// `x-amz-security-token`, and `Authorization`. `path` and `query` are as the request sends them, not yet encoded.
    func sign(
        method: String,
        path: String,
        query: [(String, String)],
        headers: [(String, String)],
        payloadHash: String,
        date: Date
    ) -> [(String, String)] {
        var all = headers
        all.append(("x-amz-date", Self.timestamp(date)))
        if let sessionToken { all.append(("x-amz-security-token", sessionToken)) }
        let authorization = self.authorization(method: method, path: path, query: query, headers: all, payloadHash: payloadHash, date: date)
        return all + [("Authorization", authorization)]
    }

    /// The `Authorization` value for a request whose `headers` already hold everything signed (`host`, `x-amz-date`…).
    func authorization(
        method: String,
        path: String,
        query: [(String, String)],
        headers: [(String, String)],
        payloadHash: String,
        date: Date
    )
        -> String
    {
        let canonical = Self.canonicalHeaders(headers)
        let request = Self.canonicalRequest(method: method, path: path, query: query, headers: canonical, payloadHash: payloadHash)
        let scope = "\(Self.day(date))/\(self.region)/\(self.service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(Self.timestamp(date))\n\(scope)\n\(Self.hex(SHA256.hash(data: Data(request.utf8))))"
        var key = SymmetricKey(data: Data("AWS4\(self.secretAccessKey)".utf8))
        for part in [Self.day(date), self.region, self.service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        let names = canonical.map(\.name).joined(separator: ";")
        return "AWS4-HMAC-SHA256 Credential=\(self.accessKeyID)/\(scope), SignedHeaders=\(names), Signature=\(signature)"
    }

    /// The canonical request: method, path, query, headers, signed header names and payload hash, one a line.
    static func canonicalRequest(
        method: String,
        path: String,
        query: [(String, String)],
        headers: [(name: String, value: String)],
        payloadHash: String
    )
        -> String
    {
        let lines = headers.map { "\($0.name):\($0.value)\n" }.joined()
        return [method, Self.canonicalPath(path), Self.canonicalQuery(query), lines, headers.map(\.name).joined(separator: ";"), payloadHash]
            .joined(separator: "\n")
    }

    /// `path` percent-encoded once, its slashes kept.
    static func canonicalPath(_ path: String) -> String {
        path.isEmpty ? "/" : Self.encode(path, keepingSlashes: true)
    }

    /// Names and values percent-encoded, sorted by name then value, as `a=1&b=2` (a name alone is `name=`).
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        // Encoded text is ASCII, so String's order is the byte order the specification asks for.
        let encoded: [(name: String, value: String)] = query.map { pair in
            (Self.encode(pair.0, keepingSlashes: false), Self.encode(pair.1, keepingSlashes: false))
        }
        let sorted = encoded.sorted { left, right in left.name == right.name ? left.value < right.value : left.name < right.name }
        return sorted.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
    }

    /// Lowercased names sorted, values trimmed with inner runs of spaces made one; a name given twice has its values joined by commas.
    static func canonicalHeaders(_ headers: [(String, String)]) -> [(name: String, value: String)] {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let trimmed = value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[name.lowercased(), default: []].append(trimmed)
        }
        return merged.keys.sorted().map { (name: $0, value: merged[$0]!.joined(separator: ",")) }
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` when `keepingSlashes`), of UTF-8 bytes.
    static func encode(_ text: String, keepingSlashes: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepingSlashes:
                out.append("/")
            default:
                out.append("%")
                out.append(Self.hexDigits[Int(byte >> 4)])
                out.append(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
        return out
    }

    private static let hexDigits: [Character] = Array("0123456789ABCDEF")

    /// Lowercase hexadecimal of `bytes`.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `20150830T123600Z`.
    static func timestamp(_ date: Date) -> String {
        let parts = Self.utc(date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!)
    }

    /// `20150830`.
    static func day(_ date: Date) -> String {
        let parts = Self.utc(date)
        return String(format: "%04d%02d%02d", parts.year!, parts.month!, parts.day!)
    }

    private static func utc(_ date: Date) -> DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    }
}
