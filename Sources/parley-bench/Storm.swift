import ArgumentParser
import Foundation
import SocketIOProtocol
import Synchronization

/// `parley-bench storm`: the members of one big group reconnect at once (a restart, a deploy) while one member sends.
struct Storm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storm",
        abstract: "M members of one group connect at once while one sends, paced: message latency during the storm, presence after it."
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "Members of the group, the sender included (at most 1000).") var members = 1000
    @Option(help: "Members connected before the storm whose deliveries are measured, the sender excluded.") var observers = 10
    @Option(help: "Messages per second the sender sends.") var rate = 20.0
    @Option(help: "Seconds of sending; the storm starts half a second in.") var duration = 5.0
    @Option(
        help: "Processes (this one included): with more than one, the storm's sockets connect from the others, so this one only sends and observes."
    )
    var processes = 1

    func validate() throws {
        guard self.processes >= 1, self.processes <= 16 else { throw ValidationError("--processes is 1 to 16") }
    }

    func run() async throws {
        let users = try self.options.loadUsers(atLeast: self.members)
        let result = try await BenchContext.with(self.options) { context in
            try await Self.measure(
                context: context,
                users: Array(users.prefix(self.members)),
                observers: min(self.observers, self.members - 1),
                rate: self.rate,
                duration: self.duration,
                processes: self.processes,
                options: self.options
            )
        }
        self.options.print([result])
    }

    static func measure(
        context: BenchContext,
        users: [BenchUser],
        observers: Int,
        rate: Double,
        duration: Double,
        processes: Int = 1,
        options: BenchOptions? = nil
    ) async throws -> ScenarioResult {
        let sender = users[0]
        // The group exists first: every connect below tells up to M-1 members that one more is online.
        let chatID = try await context.api.createGroup(
            token: sender.accessToken,
            name: "bench storm \(runTag())",
            memberIDs: users.dropFirst().map(\.id)
        )
        let latency = LatencyRecorder()
        let watched = Array(users[0...observers])
        let trackers = watched.indices.map { index in
            DeliveryTracker(chatID: chatID, label: "observer \(index)", afterSeq: 0, latency: index == 0 ? nil : latency)
        }
        let views = watched.map { PresenceView(me: $0.id) }
        let lost = Atomic<Int>(0)
        let early = try await context.connect(
            tokens: watched.map(\.accessToken),
            handler: { index in
                { name, arguments in
                    trackers[index].handle(name: name, arguments: arguments)
                    views[index].handle(name: name, arguments: arguments)
                }
            },
            onClose: { _ in lost.add(1, ordering: .relaxed) }
        )
        // With --processes N, the storm's sockets are held by N − 1 `holders`, each connecting its share at `go`: parsing a
        // thousand welcomes (each listing up to 999 people online) must not delay the observers' clocks in this process.
        let stormUsers = observers + 1..<users.count
        var children: [ReceiverProcess] = []
        defer { for child in children { child.stop() } }
        if processes > 1, let options {
            let share = stormUsers.count / (processes - 1)
            for index in 0..<processes - 1 {
                let from = stormUsers.lowerBound + index * share
                let count = index == processes - 2 ? stormUsers.upperBound - from : share
                let arguments = ["holders", "--from", String(from), "--count", String(count), "--concurrency", "1000", "--on-go"]
                children.append(try ReceiverProcess(options: options, arguments: arguments))
            }
            for child in children { _ = try await child.expect("ready") }
        }
        let acked = AckCounter()
        let tag = runTag()
        let before = context.sample()
        let start = Monotonic.nanoseconds()
        let end = start + UInt64(duration * 1e9)
        async let sending: Void = BenchContext.sendPaced(
            early[0],
            chatID: chatID,
            start: start,
            end: end,
            interval: 1e9 / rate,
            idPrefix: tag,
            acked: acked
        )
        try await sleep(untilMonotonic: start + 500_000_000)
        let stormStart = Monotonic.nanoseconds()
        var stormers: [SocketIOClient] = []
        var stormed = 0
        if children.isEmpty {
            stormers = try await context.connect(
                tokens: users[stormUsers].map(\.accessToken),
                concurrency: 1000,
                handler: { _ in { _, _ in } },
                onClose: { _ in lost.add(1, ordering: .relaxed) }
            )
            stormed = stormers.count
        } else {
            for child in children { child.say("go") }
            for child in children {
                let (count, note) = try await child.connected()
                if let note { throw CorrectnessFailure("a holders process could not connect: \(note)") }
                stormed += count
            }
        }
        let stormEnd = Monotonic.nanoseconds()
        try await sending
        let sent = acked.value.load(ordering: .relaxed)
        try await DeliveryTracker.awaitAll(trackers, expected: { _ in sent }, timeout: .seconds(60), closedSockets: { lost.load(ordering: .relaxed) })
        // Presence right afterwards: every observer sees every other member online.
        let everyone = Set(users.map(\.id))
        let presenceDeadline = ContinuousClock.now + .seconds(10)
        while views.contains(where: { !$0.sees(everyone) }), ContinuousClock.now < presenceDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let presenceSettled = Monotonic.nanoseconds()
        var childCPU: UInt64 = 0
        for child in children {
            child.say("close")
            childCPU += try await child.report().cpuNanoseconds
        }
        let after = context.sample()
        if let blind = views.first(where: { !$0.sees(everyone) }) {
            throw CorrectnessFailure("an observer sees \(blind.onlineCount) of \(everyone.count - 1) members online 10 s after the storm")
        }
        await BenchContext.closeAll(early + stormers)
        if lost.load(ordering: .relaxed) > 0 { throw CorrectnessFailure("\(lost.load(ordering: .relaxed)) sockets were closed by the server") }
        let histogram = latency.snapshot
        var resources = ResourceUse(from: before, to: after)
        resources.addLoadGenerator(cpuNanoseconds: childCPU, over: after.wallNanoseconds - before.wallNanoseconds)
        var result = ScenarioResult(
            scenario: "storm",
            parameters: ["members": String(users.count), "rate": String(Int(rate)), "duration": String(duration), "messages": String(sent)],
            figures: [
                Figure("storm connects", Double(stormed) / (Double(stormEnd - stormStart) / 1e9), "sockets/s"),
                Figure("latency p50", histogram.milliseconds(at: 50), "ms"),
                Figure("latency p99", histogram.milliseconds(at: 99), "ms", atMost: 100),
                Figure("latency max", histogram.maxMilliseconds, "ms"),
                Figure("presence settled", Double(presenceSettled - stormEnd) / 1e6, "ms after the last connect"),
            ],
            resources: resources
        )
        if processes > 1 { result.parameters["processes"] = String(processes) }
        result.notes.append(
            "\(stormed) sockets connected at once into a group of \(users.count) while \(sent) messages went to \(observers) observers: "
                + "no socket closed, every message exactly once and in seq order, every observer saw every member online"
        )
        return result
    }
}

/// Who one socket believes is online, from `getOnlineUser`, `userOnline` / `userOffline` and `presence`.
final class PresenceView: Sendable {
    let me: String
    private let online = Mutex<Set<String>>([])

    init(me: String) {
        self.me = me
    }

    func handle(name: String, arguments: [JSONValue]) {
        let payload = arguments.first
        switch name {
        case "getOnlineUser":
            let ids = payload?.arrayValue?.compactMap(\.stringValue) ?? []
            self.online.withLock { $0 = Set(ids) }
        case "userOnline", "userOffline":
            guard let id = payload?["userId"]?.stringValue else { return }
            self.online.withLock { if name == "userOnline" { $0.insert(id) } else { $0.remove(id) } }
        case "presence":
            let came = payload?["online"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let went = payload?["offline"]?.arrayValue?.compactMap(\.stringValue) ?? []
            self.online.withLock { online in
                online.formUnion(came)
                online.subtract(went)
            }
        default:
            return
        }
    }

    /// Whether every one of `users` but this socket's own is online here.
    func sees(_ users: Set<String>) -> Bool {
        self.online.withLock { users.subtracting([self.me]).isSubset(of: $0) }
    }

    var onlineCount: Int { self.online.withLock { $0.subtracting([self.me]).count } }
}
