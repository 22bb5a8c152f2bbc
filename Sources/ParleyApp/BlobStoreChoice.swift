import ChatService
import Foundation
import ParleyCore

extension ParleyConfiguration {
    /// The store `PARLEY_BLOB_STORE` names: `<data dir>/files` on disk, or a bucket of an S3-compatible object store.
    func makeBlobStore() throws -> any BlobStore {
        switch self.blobStore {
        case .disk: try DiskBlobStore(directory: (self.dataDirectory as NSString).appendingPathComponent("files"))
        case .s3(let settings): S3BlobStore(settings: settings)
        }
    }
}
