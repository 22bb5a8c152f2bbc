import ArgumentParser
import Foundation
import Histogram
import SocketIOProtocol
import Synchronization

/// `parley-bench fanout`: one sender into one group whose members are all connected, paced.
struct FanOut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "One group of M connected members, one sender, paced: deliveries/s and per-delivery latency."
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "Members of the group, the sender included (at most 1000).") var members = 1000
    @Option(help: "Messages per second the sender sends.") var rate = 200.0
    @Option(help: "Seconds of sending.") var duration = 10.0
    @Flag(
        help:
            "As real clients: every receiver has the chat open (joinChat), so read pointers move on delivery, and the sender types before each send."
    )
    var realistic = false

    @Option(help: "Processes the members' sockets are spread over (this one included); their results are merged.")
    var processes = 1

    func validate() throws {
        guard self.processes >= 1, self.processes <= 16 else { throw ValidationError("--processes is 1 to 16") }
        guard self.members >= 2 * self.processes else { throw ValidationError("--members must be at least twice --processes") }
    }

    func run() async throws {
        let users = try self.options.loadUsers(atLeast: self.members)
        let result = try await BenchContext.with(self.options) { context in
            try await Self.measure(
                context: context,
                users: Array(users.prefix(self.members)),
                rate: self.rate,
                duration: self.duration,
                realistic: self.realistic,
                processes: self.processes,
                options: self.options
            )
        }
        self.options.print([result])
    }

    static func measure(
        context: BenchContext,
        users: [BenchUser],
        rate: Double,
        duration: Double,
        realistic: Bool = false,
        processes: Int = 1,
        options: BenchOptions? = nil
    ) async throws -> ScenarioResult {
        // The members connect before the group exists: connecting 1000 contacts at once would tell each of them up to
        // 999 times `userOnline`, which measures presence, not message fan-out. Only this group's announcement counts
        // (opening the direct chats before it announces those, too).
        let groupName = "bench fan-out \(runTag())"
        // This process keeps the first share, the sender's; each other process connects a share of its own.
        let share = users.count / processes
        var children: [ReceiverProcess] = []
        defer { for child in children { child.stop() } }
        if processes > 1, let options {
            for index in 1..<processes {
                let from = index * share
                let count = index == processes - 1 ? users.count - from : share
                children.append(try ReceiverProcess(options: options, from: from, count: count, groupName: groupName, realistic: realistic))
            }
        }
        let own = try await ReceiverShare(context: context, users: Array(users.prefix(processes > 1 ? share : users.count)), groupName: groupName)
        for child in children { _ = try await child.expect("connected") }
        let sender = users[0]
        let chatID = try await context.api.createGroup(token: sender.accessToken, name: groupName, memberIDs: users.dropFirst().map(\.id))
        // The new group is announced to every member (`chatUpdated`, with all 1,000 members in it: 60 MB in all): that
        // is group creation, not fan-out, so sending starts once it has arrived (a server that announces nothing, like the
        // Node yardstick, is waited for one second).
        let created = Monotonic.nanoseconds()
        for child in children { child.say("chat \(chatID)") }
        var announced = try await own.awaitAnnouncement(since: created)
        for child in children {
            let last = UInt64(try await child.expect("announced")) ?? 0
            announced = announced.map { last == 0 ? nil : max($0, last) } ?? nil
        }
        // Every receiver opens the chat, as the web app does for the chat on screen.
        if realistic { try await own.join(chatID, from: 1) }
        own.track(chatID, firstLabel: 0)
        for child in children { _ = try await child.expect("ready") }
        let acked = AckCounter()
        let tag = runTag()
        let before = context.sample()
        let start = Monotonic.nanoseconds()
        let end = start + UInt64(duration * 1e9)
        let interval = 1e9 / rate
        try await BenchContext.sendPaced(
            own.sockets[0],
            chatID: chatID,
            start: start,
            end: end,
            interval: interval,
            idPrefix: tag,
            acked: acked,
            typing: realistic
        )
        let sent = acked.value.load(ordering: .relaxed)
        for child in children { child.say("expect \(sent)") }
        try await own.awaitDeliveries(sent)
        var histogram = own.latency.snapshot
        var readPackets = own.readStatePackets
        var childCPU: UInt64 = 0
        for child in children {
            let report = try await child.report()
            if let latency = report.latency { histogram.add(latency) }
            readPackets += report.readStatePackets
            childCPU += report.cpuNanoseconds
        }
        let finished = Monotonic.nanoseconds()
        let after = context.sample()
        await own.close()
        let deliveries = sent * users.count
        var figures = [
            Figure("deliveries", Double(deliveries) / (Double(finished - start) / 1e9), "deliveries/s", atLeast: 200_000),
            Figure("latency p50", histogram.milliseconds(at: 50), "ms"),
            Figure("latency p99", histogram.milliseconds(at: 99), "ms", atMost: 50),
            Figure("latency max", histogram.maxMilliseconds, "ms"),
        ]
        if let announced { figures.append(Figure("group announced to all", Double(max(announced, created) - created) / 1e6, "ms")) }
        if realistic { figures.append(Figure("read-state packets", Double(readPackets) / Double(max(sent, 1)), "per message")) }
        var resources = ResourceUse(from: before, to: after)
        resources.addLoadGenerator(cpuNanoseconds: childCPU, over: finished - start)
        var parameters = ["members": String(users.count), "rate": String(Int(rate)), "duration": String(duration), "messages": String(sent)]
        if processes > 1 { parameters["processes"] = String(processes) }
        var result = ScenarioResult(
            scenario: realistic ? "fan-out, realistic" : "fan-out",
            parameters: parameters,
            figures: figures,
            resources: resources
        )
        result.notes.append("\(sent) messages × \(users.count) sockets: every delivery exactly once and in seq order")
        if processes > 1 { result.notes.append("load generator: \(processes) processes, CPU summed") }
        return result
    }
}
