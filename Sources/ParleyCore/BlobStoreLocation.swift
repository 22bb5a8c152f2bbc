import Foundation

/// Where uploaded file bytes live (`PARLEY_BLOB_STORE`): folders under the data directory, or an S3-compatible bucket.
public enum BlobStoreLocation: Sendable, Equatable {
    /// `<data dir>/files` (the default).
    case disk
    /// A bucket of an S3-compatible object store.
    case s3(S3Settings)
}

/// How to reach a bucket: `PARLEY_BLOB_STORE=s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION&style=path|virtual`, with the
/// credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (temporary credentials) `AWS_SESSION_TOKEN`.
public struct S3Settings: Sendable, Equatable {
    /// Path-style (`ENDPOINT/BUCKET/KEY`) or virtual-host style (`BUCKET.ENDPOINT-HOST/KEY`) addresses.
    public enum Style: String, Sendable {
        case path, virtual
    }

    public var bucket: String
    /// Prepended to every key (empty, or ending in `/`): several deployments may share a bucket.
    public var prefix: String
    /// `scheme://host[:port]` without a path; by default AWS's `https://s3.REGION.amazonaws.com`.
    public var endpoint: String
    public var region: String
    public var style: Style
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    /// Settings as given; `endpoint` has no trailing slash.
    public init(
        bucket: String,
        prefix: String = "",
        endpoint: String,
        region: String,
        style: Style,
        accessKeyID: String,
        secretAccessKey: String,
        sessionToken: String? = nil
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.style = style
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// Reads `PARLEY_BLOB_STORE` and the `AWS_*` credentials; nil or `disk` is the disk store.
    static func location(environment: [String: String]) throws -> BlobStoreLocation {
        let reader = EnvironmentReader(environment: environment)
        guard let text = reader.string("PARLEY_BLOB_STORE"), text != "disk" else { return .disk }
        let name = "PARLEY_BLOB_STORE"
        guard text.hasPrefix("s3://"), let url = URLComponents(string: text), let bucket = url.host, !bucket.isEmpty else {
            throw ConfigurationError(
                name,
                "must be disk or s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION&style=path|virtual (got \"\(text.prefix(80))\")"
            )
        }
        // Bucket names (AWS's rules, which other stores follow): 3–63 of a–z, 0–9, '.' and '-'.
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.-".utf8)
        guard (3...63).contains(bucket.utf8.count), bucket.utf8.allSatisfy(allowed.contains) else {
            throw ConfigurationError(name, "the bucket name must be 3–63 characters of a–z, 0–9, '.' and '-' (got \"\(bucket.prefix(80))\")")
        }
        var prefix = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !prefix.isEmpty { prefix += "/" }
        var query: [String: String] = [:]
        for item in url.queryItems ?? [] {
            guard ["endpoint", "region", "style"].contains(item.name), let value = item.value, !value.isEmpty else {
                throw ConfigurationError(name, "knows the parameters endpoint, region and style, each with a value (got \"\(item.name)\")")
            }
            query[item.name] = value
        }
        let region = query["region"] ?? "us-east-1"
        guard !region.isEmpty, region.utf8.allSatisfy(Set("abcdefghijklmnopqrstuvwxyz0123456789-".utf8).contains) else {
            throw ConfigurationError(name, "region must be a region name such as us-east-1 (got \"\(region.prefix(40))\")")
        }
        var endpoint = "https://s3.\(region).amazonaws.com"
        if let given = query["endpoint"] {
            guard let parsed = URLComponents(string: given), ["http", "https"].contains(parsed.scheme), let host = parsed.host, !host.isEmpty,
                parsed.path.isEmpty || parsed.path == "/", parsed.query == nil
            else {
                throw ConfigurationError(name, "endpoint must be http(s)://HOST[:PORT] without a path (got \"\(given.prefix(80))\")")
            }
            endpoint = given.hasSuffix("/") ? String(given.dropLast()) : given
        }
        // A bucket name with dots cannot be a host name under a TLS certificate's wildcard; an endpoint of one's own
        // (MinIO, moto, Ceph) rarely resolves BUCKET.HOST: both default to path style.
        let style: Style
        if let given = query["style"] {
            guard let parsed = Style(rawValue: given) else {
                throw ConfigurationError(name, "style must be path or virtual (got \"\(given.prefix(40))\")")
            }
            style = parsed
        } else {
            style = query["endpoint"] == nil && !bucket.contains(".") ? .virtual : .path
        }
        guard let accessKey = reader.string("AWS_ACCESS_KEY_ID") else {
            throw ConfigurationError("AWS_ACCESS_KEY_ID", "must be set when PARLEY_BLOB_STORE is an s3:// URL")
        }
        guard let secret = reader.string("AWS_SECRET_ACCESS_KEY") else {
            throw ConfigurationError("AWS_SECRET_ACCESS_KEY", "must be set when PARLEY_BLOB_STORE is an s3:// URL")
        }
        return .s3(
            S3Settings(
                bucket: bucket,
                prefix: prefix,
                endpoint: endpoint,
                region: region,
                style: style,
                accessKeyID: accessKey,
                secretAccessKey: secret,
                sessionToken: reader.string("AWS_SESSION_TOKEN")
            )
        )
    }
}
