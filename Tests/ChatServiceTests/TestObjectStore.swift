import Foundation
import ParleyCore
import ParleyStore
import Testing

@testable import ChatService

/// The S3-compatible server of the test run: moto, which `scripts/test` and `scripts/s3` start and name in
/// `PARLEY_TEST_S3_ENDPOINT`. Each test gets a bucket of its own.
enum TestObjectStore {
    static let endpoint = ProcessInfo.processInfo.environment["PARLEY_TEST_S3_ENDPOINT"]
    /// The access key `scripts/lib/s3.sh` made: moto checks every request's signature against it.
    static let accessKeyID = ProcessInfo.processInfo.environment["PARLEY_TEST_S3_ACCESS_KEY_ID"]
    static let secretAccessKey = ProcessInfo.processInfo.environment["PARLEY_TEST_S3_SECRET_ACCESS_KEY"]
    /// Whether the server checks signatures (a moto started with a key of its own).
    static let checksSignatures = accessKeyID != nil && secretAccessKey != nil
    static let isAvailable = endpoint != nil
    static let skipped: Comment = "PARLEY_TEST_S3_ENDPOINT is not set: run the tests through scripts/test or scripts/s3, which start moto"

    static func settings(
        bucket: String,
        endpoint: String,
        style: S3Settings.Style = .path,
        prefix: String = "",
        secretAccessKey: String? = nil
    ) -> S3Settings {
        S3Settings(
            bucket: bucket,
            prefix: prefix,
            endpoint: endpoint,
            region: "us-east-1",
            style: style,
            accessKeyID: self.accessKeyID ?? "parley-test",
            secretAccessKey: secretAccessKey ?? self.secretAccessKey ?? "parley-test-secret"
        )
    }

    /// A new bucket's name.
    static func bucketName() -> String {
        "parley-test-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
    }

    /// A store on a new bucket, made.
    static func freshStore(prefix: String = "") async throws -> S3BlobStore {
        let store = S3BlobStore(settings: self.settings(bucket: self.bucketName(), endpoint: try #require(self.endpoint), prefix: prefix))
        try await store.createBucket()
        return store
    }

    /// A store whose endpoint nothing listens on: a port that was free a moment ago.
    static func downStore() throws -> S3BlobStore {
        let socket = Socket.freePort()
        return S3BlobStore(settings: self.settings(bucket: "parley-down", endpoint: "http://127.0.0.1:\(socket)"))
    }
}

enum Socket {
    /// A TCP port nothing listens on (bound and closed again).
    static func freePort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 ? getsockname(descriptor, $0, &length) : -1 }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
