import Foundation
public import Logging
package import ParleyCore
package import ParleyStore
public import ServiceLifecycle

/// Collects what uploads leave behind, every `interval`: files no message carries and no one has as avatar (an image
/// whose message failed or was a retry, an avatar replaced, an upload never used), once older than `age`; and blobs
/// no file row names (a crash between storing the bytes and the row, or between deleting the row and the bytes).
/// Every chat instance sweeps; two sweeps at once erase nothing twice that matters.
public struct FileSweeper: Service {
    let files: FileStore
    let blobs: any BlobStore
    let interval: Duration
    let age: Duration
    let logger: Logger

    package init(files: FileStore, blobs: any BlobStore, interval: Duration, age: Duration, logger: Logger) {
        self.files = files
        self.blobs = blobs
        self.interval = interval
        self.age = age
        self.logger = logger
    }

    /// At most this many file rows go in one transaction.
    static let batch = 500

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                guard !Task.isCancelled else { return }
                do {
                    let swept = try await self.sweep(now: Date())
                    if swept.files > 0 || swept.blobs > 0 {
                        self.logger.info("unclaimed files collected", metadata: ["files": "\(swept.files)", "blobs": "\(swept.blobs)"])
                    }
                } catch {
                    self.logger.warning("file sweep failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// One sweep as of `now`: the unclaimed files' rows and bytes, then bytes without a row. Returns how many of each.
    @discardableResult
    func sweep(now: Date) async throws -> (files: Int, blobs: Int) {
        let cutoff = now.addingTimeInterval(-Double(self.age.components.seconds))
        var files = 0
        while true {
            let ids = try await self.files.forgetUnclaimed(before: Int64(cutoff.timeIntervalSince1970 * 1000), limit: Self.batch)
            // Rows first, bytes after: a crash in between leaves bytes without a row, which the next step collects.
            for id in ids { try await self.blobs.delete(key: id) }
            files += ids.count
            if ids.count < Self.batch { break }
        }
        var blobs = 0
        // Only blobs older than the cutoff: a fresh one may be an upload whose row is being written.
        try await self.blobs.keys(writtenBefore: cutoff) { keys in
            for slice in keys.slices(of: Self.batch) {
                let some = Array(slice)
                let named = try await self.files.existing(some)
                for key in some where !named.contains(key) {
                    try await self.blobs.delete(key: key)
                    blobs += 1
                }
            }
        }
        return (files, blobs)
    }
}

extension ChatService {
    /// The sweep of this service's files, as `configuration` sets it.
    package func fileSweeper(configuration: ParleyConfiguration, logger: Logger) -> FileSweeper {
        FileSweeper(
            files: self.files,
            blobs: self.blobs,
            interval: .milliseconds(Int(configuration.fileSweepSeconds * 1000)),
            age: .seconds(configuration.unclaimedFileSeconds),
            logger: logger
        )
    }
}
