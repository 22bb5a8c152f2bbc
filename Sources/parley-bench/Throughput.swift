import ArgumentParser
import Foundation
import Synchronization

/// `parley-bench throughput`: pairs in direct chats as fast as acks allow, then paced at half the rate found.
struct Throughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "C pairs in direct chats, W sends in flight per sender: delivered msgs/s and latency; then a run paced at half that rate."
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "Sender/receiver pairs, each in its own direct chat.") var pairs = 8
    @Option(help: "Sends in flight per sender (each waits for its ack).") var window = 16
    @Option(help: "Seconds of each run.") var duration = 10.0
    @Option(help: "Paced run's rate in msgs/s; 0 = half the rate the unpaced run reached.") var pacedRate = 0.0
    @Flag(name: .customLong("no-paced"), help: "Only the unpaced run.") var noPaced = false

    func run() async throws {
        let users = try self.options.loadUsers(atLeast: 2 * self.pairs)
        let results = try await BenchContext.with(self.options) { context in
            let run = try await ThroughputRun.prepare(context: context, users: users, pairs: self.pairs)
            let unpaced = try await run.measure(duration: self.duration, window: self.window, rate: nil)
            var results = [unpaced.result]
            if !self.noPaced {
                let rate = self.pacedRate > 0 ? self.pacedRate : (unpaced.deliveredPerSecond / 2).rounded()
                results.append(try await run.measure(duration: self.duration, window: self.window, rate: max(rate, 1)).result)
            }
            await run.close()
            return results
        }
        self.options.print(results)
    }
}

/// The pairs' chats and sockets, kept across the unpaced and the paced run.
final class ThroughputRun: Sendable {
    struct Pair: Sendable {
        var chatID: String
        var sender: SocketIOClient
    }

    let context: BenchContext
    private let sockets = Mutex<(pairs: [Pair], receivers: [SocketIOClient])>(([], []))
    /// Each chat's last seq, moved on after every run.
    private let lastSeqs: Mutex<[Int]>
    /// Per pair: the receiver's and the sender's own socket's trackers, replaced for every run.
    private let trackers = Mutex<[(receiver: DeliveryTracker, sender: DeliveryTracker)]>([])
    private let lost = Atomic<Int>(0)

    private init(context: BenchContext, lastSeqs: [Int]) {
        self.context = context
        self.lastSeqs = Mutex(lastSeqs)
    }

    var pairs: [Pair] { self.sockets.withLock { $0.pairs } }

    static func prepare(context: BenchContext, users: [BenchUser], pairs count: Int) async throws -> ThroughputRun {
        var chats: [(id: String, lastSeq: Int)] = []
        for index in 0..<count {
            chats.append(try await context.api.openDirect(token: users[2 * index].accessToken, with: users[2 * index + 1].id))
        }
        let run = ThroughputRun(context: context, lastSeqs: chats.map(\.lastSeq))
        run.resetTrackers(chatIDs: chats.map(\.id), latency: LatencyRecorder())
        let onClose: @Sendable ((any Error)?) -> Void = { _ in run.lost.add(1, ordering: .relaxed) }
        let senders = try await context.connect(
            tokens: (0..<count).map { users[2 * $0].accessToken },
            handler: { index in
                { name, arguments in run.tracker(index).sender.handle(name: name, arguments: arguments) }
            },
            onClose: onClose
        )
        let receivers = try await context.connect(
            tokens: (0..<count).map { users[2 * $0 + 1].accessToken },
            handler: { index in
                { name, arguments in run.tracker(index).receiver.handle(name: name, arguments: arguments) }
            },
            onClose: onClose
        )
        run.sockets.withLock { $0 = (chats.enumerated().map { Pair(chatID: $1.id, sender: senders[$0]) }, receivers) }
        return run
    }

    func tracker(_ index: Int) -> (receiver: DeliveryTracker, sender: DeliveryTracker) {
        self.trackers.withLock { $0[index] }
    }

    private func resetTrackers(chatIDs: [String], latency: LatencyRecorder) {
        let lastSeqs = self.lastSeqs.withLock { $0 }
        self.trackers.withLock { trackers in
            trackers = chatIDs.enumerated().map { index, chatID in
                (
                    DeliveryTracker(chatID: chatID, label: "receiver \(index)", afterSeq: lastSeqs[index], latency: latency),
                    DeliveryTracker(chatID: chatID, label: "sender \(index)", afterSeq: lastSeqs[index], latency: nil)
                )
            }
        }
    }

    /// One run: unpaced with `window` sends in flight per sender when `rate` is nil, else open-loop at `rate` msgs/s in all.
    func measure(duration: Double, window: Int, rate: Double?) async throws -> (result: ScenarioResult, deliveredPerSecond: Double) {
        let pairs = self.pairs
        let latency = LatencyRecorder()
        self.resetTrackers(chatIDs: pairs.map(\.chatID), latency: latency)
        let tag = runTag()
        let acked = pairs.map { _ in AckCounter() }
        let before = self.context.sample()
        let start = Monotonic.nanoseconds()
        let end = start + UInt64(duration * 1e9)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, pair) in pairs.enumerated() {
                if let rate {
                    let interval = Double(pairs.count) / rate * 1e9
                    group.addTask {
                        try await BenchContext.sendPaced(
                            pair.sender,
                            chatID: pair.chatID,
                            start: start,
                            end: end,
                            interval: interval,
                            idPrefix: "\(tag)-\(index)",
                            acked: acked[index]
                        )
                    }
                } else {
                    for lane in 0..<window {
                        group.addTask {
                            var sequence = 0
                            while Monotonic.nanoseconds() < end {
                                let id = "\(tag)-\(index)-\(lane)-\(sequence)"
                                try await BenchContext.send(
                                    pair.sender,
                                    chatID: pair.chatID,
                                    text: SendStamp.text(sentAt: Monotonic.nanoseconds()),
                                    clientMessageID: id
                                )
                                acked[index].value.add(1, ordering: .relaxed)
                                sequence += 1
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let sendsDone = Monotonic.nanoseconds()
        let trackers = self.trackers.withLock { $0 }
        let deliveredAtEnd = trackers.reduce(0) { $0 + $1.receiver.received }
        let after = self.context.sample()
        try await DeliveryTracker.awaitAll(
            trackers.flatMap { [$0.receiver, $0.sender] },
            expected: { tracker in
                acked[trackers.firstIndex { $0.receiver === tracker || $0.sender === tracker }!].value.load(ordering: .relaxed)
            },
            timeout: .seconds(60),
            closedSockets: { self.lost.load(ordering: .relaxed) }
        )
        if self.lost.load(ordering: .relaxed) > 0 {
            throw CorrectnessFailure("\(self.lost.load(ordering: .relaxed)) sockets were closed by the server")
        }
        self.lastSeqs.withLock { lastSeqs in
            for index in lastSeqs.indices { lastSeqs[index] += acked[index].value.load(ordering: .relaxed) }
        }
        let total = acked.reduce(0) { $0 + $1.value.load(ordering: .relaxed) }
        let elapsed = Double(sendsDone - start) / 1e9
        let delivered = Double(deliveredAtEnd) / elapsed
        let histogram = latency.snapshot
        var figures = [Figure("delivered", delivered, "msg/s", atLeast: rate == nil ? 10_000 : nil)]
        figures.append(Figure("latency p50", histogram.milliseconds(at: 50), "ms"))
        figures.append(Figure("latency p99", histogram.milliseconds(at: 99), "ms", atMost: rate == nil ? nil : 25))
        figures.append(Figure("latency max", histogram.maxMilliseconds, "ms"))
        let parameters = [
            "pairs": String(pairs.count), "window": rate == nil ? String(window) : "open loop", "duration": String(duration),
            "rate": rate.map { String(Int($0)) } ?? "unpaced", "messages": String(total),
        ]
        var result = ScenarioResult(
            scenario: rate == nil ? "throughput" : "throughput paced",
            parameters: parameters,
            figures: figures,
            resources: ResourceUse(from: before, to: after)
        )
        result.notes.append("\(total) messages acked and delivered exactly once, in seq order, to both sockets of every pair")
        return (result, delivered)
    }

    func close() async {
        let (pairs, receivers) = self.sockets.withLock { $0 }
        await BenchContext.closeAll(pairs.map(\.sender) + receivers)
    }
}

/// A counter of acked sends.
final class AckCounter: Sendable {
    let value = Atomic<Int>(0)
}
