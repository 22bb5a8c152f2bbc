import Dispatch
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import ParleyCore
import Synchronization
import Testing

@testable import ChatService

@Suite("Downloads at once: a cap, given back whatever becomes of the body")
struct DownloadSlotsTests {
    @Test func slotsAreCappedAndGivenBackWhenDropped() throws {
        let slots = DownloadSlots(limit: 2)
        var held: [DownloadSlots.Slot] = [try slots.take(), try slots.take()]
        #expect(slots.count == 2)
        #expect(throws: APIError.self) { try slots.take() }
        #expect(slots.count == 2, "a refused take holds nothing")
        held.removeLast()
        #expect(slots.count == 1)
        held.append(try slots.take())
        held[0].release()
        held[0].release()
        #expect(slots.count == 1, "a slot is given back once")
        held.removeAll()
        #expect(slots.count == 0)
    }
}

/// A download's body keeps to its socket's pace: each buffer is handed on at once, and the write returns only once the
/// connection's event loop has run what was queued before it. SwiftNIO's writer learns that the channel is full only
/// then; without the wait, a loaded machine's lagging event loop let a slow reader's whole file be queued in memory.
@Suite struct PacedBodyWriterTests {
    final class Written: Sendable {
        let sizes = Mutex<[Int]>([])
        let finished = Atomic<Bool>(false)
    }

    struct RecordingWriter: ResponseBodyWriter {
        let written: Written

        mutating func write(_ buffer: ByteBuffer) async throws {
            self.written.sizes.withLock { $0.append(buffer.readableBytes) }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            self.written.finished.store(true, ordering: .relaxed)
        }
    }

    @Test func aWriteReturnsOnlyOnceTheEventLoopHasRunWhatWasQueuedBeforeIt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let written = Written()
        // The event loop is busy (as a loaded machine's lags) until released.
        let release = DispatchSemaphore(value: 0)
        loop.execute { release.wait() }
        let returned = Atomic<Bool>(false)
        let download = Task {
            var writer = PacedBodyWriter(inner: RecordingWriter(written: written), eventLoop: loop)
            try await writer.write(ByteBuffer(repeating: 1, count: 64 * 1024))
            returned.store(true, ordering: .relaxed)
            try await writer.finish(nil)
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(written.sizes.withLock { $0 } == [64 * 1024], "the buffer is handed on at once")
        let returnedEarly = returned.load(ordering: .relaxed)
        #expect(!returnedEarly, "the write waits for the event loop")
        release.signal()
        try await download.value
        let (returnedLate, finished) = (returned.load(ordering: .relaxed), written.finished.load(ordering: .relaxed))
        #expect(returnedLate && finished)
        try await group.shutdownGracefully()
    }
}
