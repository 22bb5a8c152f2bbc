import ParleyCore
import Testing

/// `PARLEY_BLOB_STORE`: the disk by default, an S3 bucket by URL with the `AWS_*` credentials; a bad value stops the
/// process at start naming the variable.
@Suite("Blob store settings")
struct BlobStoreSettingsTests {
    static let credentials = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"]

    func settings(_ url: String, _ extra: [String: String] = [:]) throws -> S3Settings {
        let configuration = try ParleyConfiguration(environment: Self.credentials.merging(extra) { $1 }.merging(["PARLEY_BLOB_STORE": url]) { $1 })
        guard case .s3(let settings) = configuration.blobStore else {
            Issue.record("not an S3 store: \(url)")
            throw ConfigurationError("PARLEY_BLOB_STORE", "not s3")
        }
        return settings
    }

    @Test("unset or disk: the folder under the data directory")
    func disk() throws {
        #expect(try ParleyConfiguration(environment: [:]).blobStore == .disk)
        #expect(try ParleyConfiguration(environment: ["PARLEY_BLOB_STORE": "disk"]).blobStore == .disk)
    }

    @Test("an endpoint of one's own defaults to path style; AWS to virtual-host style, except for dotted bucket names")
    func styles() throws {
        let own = try self.settings("s3://files?endpoint=http://127.0.0.1:9000/&region=eu-west-1", ["AWS_SESSION_TOKEN": "token"])
        #expect(own.bucket == "files" && own.endpoint == "http://127.0.0.1:9000" && own.region == "eu-west-1" && own.style == .path)
        #expect(own.accessKeyID == "AKID" && own.secretAccessKey == "secret" && own.sessionToken == "token" && own.prefix == "")
        let aws = try self.settings("s3://files/team/parley")
        #expect(aws.endpoint == "https://s3.us-east-1.amazonaws.com" && aws.style == .virtual && aws.prefix == "team/parley/")
        #expect(try self.settings("s3://my.files").style == .path)
        #expect(try self.settings("s3://files?endpoint=https://minio:9000&style=virtual").style == .virtual)
    }

    @Test("bad values and missing credentials are refused, naming the variable")
    func refused() {
        let bad: [([String: String], String)] = [
            (["PARLEY_BLOB_STORE": "ftp://files"].merging(Self.credentials) { $1 }, "PARLEY_BLOB_STORE"),
            (["PARLEY_BLOB_STORE": "s3://"].merging(Self.credentials) { $1 }, "PARLEY_BLOB_STORE"),
            (["PARLEY_BLOB_STORE": "s3://Files_Upper"].merging(Self.credentials) { $1 }, "PARLEY_BLOB_STORE"),
            (["PARLEY_BLOB_STORE": "s3://files?style=sideways"].merging(Self.credentials) { $1 }, "PARLEY_BLOB_STORE"),
            (["PARLEY_BLOB_STORE": "s3://files?endpoint=ftp://x"].merging(Self.credentials) { $1 }, "PARLEY_BLOB_STORE"),
            (["PARLEY_BLOB_STORE": "s3://files?endpoint=http://x/path"].merging(Self.credentials) { $1 }, "PARLEY_BLOB_STORE"),
            (["PARLEY_BLOB_STORE": "s3://files?bucket=other"].merging(Self.credentials) { $1 }, "PARLEY_BLOB_STORE"),
            (["PARLEY_BLOB_STORE": "s3://files?region=EU%20west"].merging(Self.credentials) { $1 }, "PARLEY_BLOB_STORE"),
            (["PARLEY_BLOB_STORE": "s3://files", "AWS_SECRET_ACCESS_KEY": "secret"], "AWS_ACCESS_KEY_ID"),
            (["PARLEY_BLOB_STORE": "s3://files", "AWS_ACCESS_KEY_ID": "AKID"], "AWS_SECRET_ACCESS_KEY"),
        ]
        for (environment, variable) in bad {
            #expect(
                "\(environment)",
                performing: { try ParleyConfiguration(environment: environment) },
                throws: { error in (error as? ConfigurationError)?.variable == variable }
            )
        }
    }
}
