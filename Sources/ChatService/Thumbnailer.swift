public import Foundation
import Synchronization

/// Makes the small previews of images with libvips's `vipsthumbnail`, run as a separate process: a decoder's crash or
/// runaway loop on a hostile image ends that process, never the server, and is killed after ``timeout`` (15 s). At most
/// ``concurrency`` run at once, each waited for on a thread of its own, never on the shared pool. Without
/// `vipsthumbnail` on the `PATH` (libvips is not installed) there are no thumbnails, and images show as they are.
public struct Thumbnailer: Sendable {
    /// A thumbnail's long side, in pixels.
    static let maxSide = 320
    /// What a thumbnail takes at most to make, by default.
    public static let defaultTimeout: Duration = .seconds(15)
    /// Thumbnails made at once by one instance; more wait their turn.
    static let concurrency = 2

    /// The `vipsthumbnail` executable, or nil: no thumbnails.
    let executable: URL?
    /// Beyond it the child is killed, and the image has no thumbnail.
    let timeout: Duration
    private let turns: Turns

    /// Uses `executable`; nil makes no thumbnails.
    public init(executable: URL?, timeout: Duration = Thumbnailer.defaultTimeout) {
        self.executable = executable
        self.timeout = timeout
        self.turns = Turns(count: Self.concurrency)
    }

    /// `vipsthumbnail` as found on the `PATH`, or none.
    public static func onPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> Thumbnailer {
        let folders = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        let found = folders.map { URL(fileURLWithPath: String($0)).appendingPathComponent("vipsthumbnail") }.first {
            FileManager.default.isExecutableFile(atPath: $0.path)
        }
        return Thumbnailer(executable: found)
    }

    /// Whether thumbnails are made at all.
    public var isAvailable: Bool { self.executable != nil }

    /// A WebP of `image` (already checked: a JPEG, PNG, GIF or WebP of sane dimensions) at most ``maxSide`` pixels on its
    /// long side, with its dimensions; nil when no thumbnail could be made (no libvips, an image it cannot decode).
    func thumbnail(of image: [UInt8]) async -> (bytes: [UInt8], info: ImageInfo)? {
        guard let executable = self.executable else { return nil }
        await self.turns.take()
        defer { self.turns.give() }
        let output: [UInt8]? = await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: Self.run(executable, input: image, timeout: self.timeout)) }
            thread.name = "parley-thumbnail"
            thread.start()
        }
        guard let output, let info = ImageInspector.inspect(output), info.contentType == "image/webp", let width = info.width,
            let height = info.height, max(width, height) <= Self.maxSide
        else { return nil }
        return (output, info)
    }

    /// Runs `vipsthumbnail` on `input` (blocking: on a thread of its own) and returns what it wrote, or nil.
    private static func run(_ executable: URL, input: [UInt8], timeout: Duration) -> [UInt8]? {
        // The input is an unlinked temporary file given as stdin: nothing is left behind, and no pipe can break on a
        // decoder that stops reading early.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("parley-thumbnail-\(UUID().uuidString)").path
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return nil }
        unlink(path)
        let source = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        guard (try? source.write(contentsOf: Data(input))) != nil, (try? source.seek(toOffset: 0)) != nil else { return nil }

        let process = Process()
        process.executableURL = executable
        process.arguments = ["stdin", "--size", "\(Self.maxSide)x\(Self.maxSide)", "-o", ".webp[Q=75,strip]"]
        // Only the loaders of trusted formats (the images are JPEG, PNG, GIF or WebP anyway), and one thread each.
        process.environment = ["VIPS_BLOCK_UNTRUSTED": "1", "VIPS_CONCURRENCY": "1", "PATH": "/usr/bin:/bin"]
        let stdout = Pipe()
        process.standardInput = source
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return nil
        }
        let done = Finished()
        let pid = process.processIdentifier
        let millis = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(millis)) {
            if !done.flag.load(ordering: .acquiring) { kill(pid, SIGKILL) }
        }
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        done.flag.store(true, ordering: .releasing)
        guard process.terminationReason == .exit, process.terminationStatus == 0, !output.isEmpty else { return nil }
        return [UInt8](output)
    }

    /// Whether a run has ended (its process waited for: its pid may no longer be signalled).
    private final class Finished: Sendable {
        let flag = Atomic<Bool>(false)
    }

    /// A count of turns: ``take()`` waits for a free one.
    final class Turns: Sendable {
        private struct State {
            var free: Int
            var waiting: [CheckedContinuation<Void, Never>] = []
        }

        private let state: Mutex<State>

        init(count: Int) {
            self.state = Mutex(State(free: count))
        }

        func take() async {
            await withCheckedContinuation { continuation in
                let now = self.state.withLock { state -> Bool in
                    guard state.free > 0 else {
                        state.waiting.append(continuation)
                        return false
                    }
                    state.free -= 1
                    return true
                }
                if now { continuation.resume() }
            }
        }

        func give() {
            let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard !state.waiting.isEmpty else {
                    state.free += 1
                    return nil
                }
                return state.waiting.removeFirst()
            }
            next?.resume()
        }
    }
}
