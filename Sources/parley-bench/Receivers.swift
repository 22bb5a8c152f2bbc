import ArgumentParser
import Foundation
import Histogram
import SocketIOProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The receiving members of a fan-out, connected and checked in one process: the whole group in a run of one process, a
/// share of it in each `receivers` process of `--processes N` (the load generator is then not one process's CPU).
final class ReceiverShare: Sendable {
    /// What the sockets heard, counted from their handlers.
    private final class Heard: Sendable {
        let trackers = Mutex<[DeliveryTracker]>([])
        let lost = Atomic<Int>(0)
        let readPackets = Atomic<Int>(0)
        let announced = Atomic<Int>(0)
        /// When the last of the share's sockets heard the group announced (monotonic nanoseconds; 0: not yet).
        let lastAnnounced = Atomic<UInt64>(0)
    }

    let sockets: [SocketIOClient]
    private let heard: Heard
    let latency = LatencyRecorder()

    /// Connects one socket per user; `groupName` is the group whose announcement (`chatUpdated`) is counted.
    init(context: BenchContext, users: [BenchUser], groupName: String) async throws {
        let heard = Heard()
        let total = users.count
        self.heard = heard
        self.sockets = try await context.connect(
            tokens: users.map(\.accessToken),
            handler: { index in
                { name, arguments in
                    if name == "messagesSeen" || name == "readState" { heard.readPackets.add(1, ordering: .relaxed) }
                    if name == "chatUpdated", arguments.first?["name"]?.stringValue == groupName,
                        heard.announced.add(1, ordering: .relaxed).newValue == total
                    {
                        heard.lastAnnounced.store(Monotonic.nanoseconds(), ordering: .relaxed)
                    }
                    heard.trackers.withLock { $0.isEmpty ? nil : $0[index] }?.handle(name: name, arguments: arguments)
                }
            },
            onClose: { _ in heard.lost.add(1, ordering: .relaxed) }
        )
    }

    /// Waits until every socket heard the group announced: at most 30 s, or 1 s when none did (a server that announces
    /// nothing, like the Node yardstick). Returns when the last one did, or nil.
    func awaitAnnouncement(since created: UInt64) async throws -> UInt64? {
        while self.heard.announced.load(ordering: .relaxed) < self.sockets.count {
            let waited = Monotonic.nanoseconds() - created
            if waited > 30_000_000_000 || (waited > 1_000_000_000 && self.heard.announced.load(ordering: .relaxed) == 0) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let last = self.heard.lastAnnounced.load(ordering: .relaxed)
        return last == 0 ? nil : last
    }

    /// Opens the chat on every socket but those before `from` (the sender's), as the web app does for the chat on screen.
    func join(_ chatID: String, from: Int = 0) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, socket) in self.sockets.enumerated().dropFirst(from) {
                if index > from + 64 { try await group.next() }
                group.addTask {
                    let answer = try await socket.emitWithAck("joinChat", encodedArguments: [JSONText.quoted(chatID)])
                    guard answer.first?["ok"]?.boolValue == true else { throw CorrectnessFailure("joinChat was refused") }
                }
            }
            try await group.waitForAll()
        }
    }

    /// From now on every socket checks and times the messages of `chatID`.
    func track(_ chatID: String, firstLabel: Int) {
        let trackers = self.sockets.indices.map {
            DeliveryTracker(chatID: chatID, label: "member \(firstLabel + $0)", afterSeq: 0, latency: self.latency)
        }
        self.heard.trackers.withLock { $0 = trackers }
    }

    /// Waits until every socket has `expected` messages (at most 60 s), each once and in order, or throws.
    func awaitDeliveries(_ expected: Int) async throws {
        let trackers = self.heard.trackers.withLock { $0 }
        try await DeliveryTracker.awaitAll(
            trackers,
            expected: { _ in expected },
            timeout: .seconds(60),
            closedSockets: { self.heard.lost.load(ordering: .relaxed) }
        )
        if self.heard.lost.load(ordering: .relaxed) > 0 {
            throw CorrectnessFailure("\(self.heard.lost.load(ordering: .relaxed)) sockets were closed by the server")
        }
    }

    var readStatePackets: Int { self.heard.readPackets.load(ordering: .relaxed) }

    func close() async { await BenchContext.closeAll(self.sockets) }
}

/// What a `receivers` process reports at the end: its latencies, what it heard, and its CPU.
struct ShareReport: Codable {
    var error: String?
    var latency: Histogram<UInt64>?
    var readStatePackets = 0
    var cpuNanoseconds: UInt64 = 0

    /// Hands this report to the parent: its `report` line.
    func say() throws {
        Receivers.say("report " + String(decoding: try JSONEncoder().encode(self), as: UTF8.self))
    }
}

/// `parley-bench receivers` (internal): a share of a fan-out's members in a process of its own, run by `fanout
/// --processes N`. It talks with the parent in lines: it prints `connected`; reads `chat ID`, prints `announced NS`
/// (0 when none heard it) and, once the chat is open where asked, `ready`; reads `expect N`, prints `report JSON`.
struct Receivers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A share of a fan-out's members in a process of its own (run by `fanout --processes N`).",
        shouldDisplay: false
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "The first of the users (0-based) this process connects.") var from: Int
    @Option(help: "How many users it connects.") var count: Int
    @Option(help: "The group whose announcement is awaited.") var groupName: String
    @Flag(help: "Open the chat on every socket (joinChat).") var realistic = false

    func run() async throws {
        let users = Array(try self.options.loadUsers(atLeast: self.from + self.count)[self.from..<(self.from + self.count)])
        try await BenchContext.with(self.options) { context in
            let share = try await ReceiverShare(context: context, users: users, groupName: self.groupName)
            Self.say("connected")
            let chatID = try Self.expect("chat")
            let announced = try await share.awaitAnnouncement(since: Monotonic.nanoseconds())
            Self.say("announced \(announced ?? 0)")
            if self.realistic { try await share.join(chatID) }
            share.track(chatID, firstLabel: self.from)
            let cpuBefore = ResourceSample.take(serverPID: nil).ownCPUNanoseconds
            Self.say("ready")
            let expected = Int(try Self.expect("expect")) ?? 0
            var report = ShareReport()
            do {
                try await share.awaitDeliveries(expected)
                report.latency = share.latency.snapshot
                report.readStatePackets = share.readStatePackets
            } catch {
                report.error = "\(error)"
            }
            report.cpuNanoseconds = ResourceSample.take(serverPID: nil).ownCPUNanoseconds - cpuBefore
            try report.say()
            await share.close()
        }
    }

    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// The rest of the next line from the parent, which must start with `word`.
    static func expect(_ word: String) throws -> String {
        guard let line = readLine(), line == word || line.hasPrefix(word + " ") else { throw CorrectnessFailure("the parent did not say \(word)") }
        return String(line.dropFirst(min(line.count, word.count + 1)))
    }
}

/// A `receivers` child process, driven by its lines.
final class ReceiverProcess: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let lines: AsyncStream<String>
    private var iterator: AsyncStream<String>.Iterator

    /// Starts this binary's `receivers` for users `from..<from + count` of `options.users`.
    convenience init(options: BenchOptions, from: Int, count: Int, groupName: String, realistic: Bool) throws {
        try self.init(
            options: options,
            arguments: ["receivers", "--from", String(from), "--count", String(count), "--group-name", groupName] + (realistic ? ["--realistic"] : [])
        )
    }

    /// Starts this binary with `arguments` (a subcommand and its own options), and the server and users of `options`.
    init(options: BenchOptions, arguments: [String]) throws {
        guard let users = options.users else { throw ValidationError("--users is required") }
        self.process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        self.process.arguments = arguments + ["--url", options.url, "--users", users]
        let output = Pipe()
        self.process.standardInput = self.input
        self.process.standardOutput = output
        let (lines, continuation) = AsyncStream.makeStream(of: String.self)
        self.lines = lines
        self.iterator = lines.makeAsyncIterator()
        // Its lines are read on a thread of their own: a blocking read must not hold one of the few cooperative threads.
        let reading = output.fileHandleForReading
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = reading.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    continuation.yield(String(decoding: pending[pending.startIndex..<end], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...end)
                }
            }
            continuation.finish()
        }
        try self.process.run()
    }

    func say(_ line: String) {
        self.input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// The rest of its next line that starts with `word` (other lines are skipped), or an error once it has ended.
    func expect(_ word: String) async throws -> String {
        while let line = await self.iterator.next() {
            if line == word { return "" }
            if line.hasPrefix(word + " ") { return String(line.dropFirst(word.count + 1)) }
        }
        self.process.waitUntilExit()
        throw CorrectnessFailure("a receivers process ended (status \(self.process.terminationStatus)) before saying \(word)")
    }

    /// A `holders` process's `connected N [note]` line: the sockets it holds, and why it stopped short, if it did.
    func connected() async throws -> (count: Int, note: String?) {
        let answer = try await self.expect("connected").split(separator: " ", maxSplits: 1)
        guard let count = answer.first.flatMap({ Int($0) }) else { throw CorrectnessFailure("a holders process said no count") }
        return (count, answer.count > 1 ? String(answer[1]) : nil)
    }

    /// Its `report` line; a correctness failure it found is thrown here.
    func report() async throws -> ShareReport {
        let report = try JSONDecoder().decode(ShareReport.self, from: Data(try await self.expect("report").utf8))
        if let error = report.error { throw CorrectnessFailure(error) }
        return report
    }

    func stop() {
        if self.process.isRunning { self.process.terminate() }
        self.process.waitUntilExit()
    }
}
