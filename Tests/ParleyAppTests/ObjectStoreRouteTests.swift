import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyCore
import ParleyTestSupport
import Testing

/// Routes with the files in an object store that is down (`PARLEY_BLOB_STORE=s3://…` at an address nothing answers):
/// uploads are 503 `file_storage_unavailable` in the contract's shape with `Retry-After`, nothing is kept, and the rest
/// of the chat goes on. (Against a live S3-compatible server: tests/e2e/test_object_storage.py.)
@Suite struct ObjectStoreRouteTests {
    /// A loopback port nothing listens on (bound, then closed).
    static func closedPort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 ? getsockname(descriptor, $0, &length) : -1 }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test(arguments: DatabaseKind.allCases)
    func aStoreThatIsDownRefusesUploadsWith503AndKeepsNothing(_ kind: DatabaseKind) async throws {
        let endpoint = "http://127.0.0.1:\(Self.closedPort())"
        try await TestApp.run(kind) {
            TestApp.manySignIns(&$0)
            $0.blobStore = .s3(
                S3Settings(bucket: "parley-down", endpoint: endpoint, region: "us-east-1", style: .path, accessKeyID: "a", secretAccessKey: "b")
            )
        } _: { app in
            let (alice, _, chatID) = try await MessageRouteTests.pair(app)
            let refused = [
                try await app.upload(alice, to: chatID, Images.png(width: 4, height: 4)),
                try await app.uploadFile(alice, to: chatID, Array("minutes".utf8), filename: "minutes.txt"),
            ]
            var avatar = MultipartBody()
            avatar.file("image", filename: "me.png", contentType: "image/png", Images.png(width: 4, height: 4))
            for response in refused + [try await app.request(.post, "/api/v1/files", as: alice, form: avatar)] {
                try response.expectError(.serviceUnavailable, code: "file_storage_unavailable")
                #expect(response.headers[.retryAfter] == "5")
            }
            // No message carries a file that is not there; text goes on.
            #expect(Shapes.seqs(try await app.history(alice, chatID)) == [])
            try await app.send(alice, to: chatID, "the files are down, the chat is not")
            #expect(Shapes.seqs(try await app.history(alice, chatID)) == [1])
        }
    }
}
