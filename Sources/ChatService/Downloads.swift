import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
public import ParleyCore
import Synchronization

/// A cap on the downloads an instance streams at once; beyond it a download is refused with 503 and `Retry-After`.
public final class DownloadSlots: Sendable {
    let limit: Int
    private let inUse = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// A slot; or a 503 when all are taken.
    func take() throws -> Slot {
        guard self.inUse.wrappingAdd(1, ordering: .relaxed).newValue <= self.limit else {
            self.inUse.wrappingSubtract(1, ordering: .relaxed)
            throw APIError(
                .serviceUnavailable,
                code: "too_many_downloads",
                message: "The server is sending as many files as it may at once; try again in a moment.",
                headers: [.retryAfter: "1"]
            )
        }
        return Slot(of: self)
    }

    /// Downloads being streamed now.
    var count: Int { self.inUse.load(ordering: .relaxed) }

    /// One download's place: given back by ``release()``, or when the last reference to it goes.
    final class Slot: Sendable {
        let slots: DownloadSlots
        private let released = Atomic<Bool>(false)

        init(of slots: DownloadSlots) {
            self.slots = slots
        }

        func release() {
            guard !self.released.exchange(true, ordering: .relaxed) else { return }
            self.slots.inUse.wrappingSubtract(1, ordering: .relaxed)
        }

        deinit {
            self.release()
        }
    }
}

/// A response body writer that lets the connection's event loop catch up after each buffer it writes, so that a
/// download is held to the socket's pace.
///
/// SwiftNIO's async writer learns that the channel is no longer writable (its buffer past the high-water mark) only
/// once the event loop has run the writes queued so far. On a loaded machine the event loop fell behind, and the file's
/// chunks (read from the page cache) were queued one after another: a slow reader's whole 10 MiB file sat in this
/// process's memory and its download slot came back at once (seen in `test_hostile.py`'s download test, about one run in
/// three on 2026-12-05). After each buffer this waits for the event loop to have run it: by then the writer knows whether
/// it may go on, and at most one buffer is ahead of what the channel has taken.
struct PacedBodyWriter: ResponseBodyWriter {
    var inner: any ResponseBodyWriter
    let eventLoop: any EventLoop

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await self.inner.write(buffer)
        try await self.eventLoop.submit {}.get()
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await self.inner.finish(trailingHeaders)
    }
}

/// A `Range: bytes=…` header (RFC 9110 §14.1.2) against a file of `size` bytes, one range at most.
enum ByteRange: Equatable {
    /// No usable single range (several, or malformed): the whole file, 200.
    case whole
    /// These bytes, 206.
    case part(ClosedRange<Int>)
    /// A range that starts past the end: 416.
    case unsatisfiable

    init(_ header: String, size: Int) {
        let spec = header.trimmingCharacters(in: .whitespaces)
        guard spec.lowercased().hasPrefix("bytes="), size > 0 else {
            self = .whole
            return
        }
        let value = spec.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        let bounds = value.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard !value.contains(","), bounds.count == 2, bounds.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) && $0.count <= 18 })
        else {
            self = .whole
            return
        }
        switch (Int(bounds[0]), Int(bounds[1])) {
        case (let first?, let last?):
            guard first <= last else {
                self = .whole
                return
            }
            self = first < size ? .part(first...min(last, size - 1)) : .unsatisfiable
        case (let first?, nil):
            self = first < size ? .part(first...(size - 1)) : .unsatisfiable
        case (nil, let suffix?):
            self = suffix > 0 ? .part(max(0, size - suffix)...(size - 1)) : .unsatisfiable
        case (nil, nil):
            self = .whole
        }
    }

    /// Whether entity tag `candidate` (perhaps weak, perhaps padded) names `tag`.
    static func sameTag(_ candidate: Substring, _ tag: String) -> Bool {
        let trimmed = candidate.trimmingCharacters(in: .whitespaces)
        return trimmed == tag || trimmed == "W/" + tag
    }
}
