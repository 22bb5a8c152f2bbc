import ArgumentParser
import Foundation
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

    func run() async throws {
        let users = try self.options.loadUsers(atLeast: self.members)
        let result = try await BenchContext.with(self.options) { context in
            try await Self.measure(
                context: context,
                users: Array(users.prefix(self.members)),
                rate: self.rate,
                duration: self.duration,
                realistic: self.realistic
            )
        }
        self.options.print([result])
    }

    static func measure(
        context: BenchContext,
        users: [BenchUser],
        rate: Double,
        duration: Double,
        realistic: Bool = false
    ) async throws -> ScenarioResult {
        let sender = users[0]
        // The members connect before the group exists: connecting 1000 contacts at once would tell each of them up to
        // 999 times `userOnline`, which measures presence, not message fan-out.
        let box = Mutex<[DeliveryTracker]>([])
        let lost = Atomic<Int>(0)
        let readPackets = Atomic<Int>(0)
        let announced = Atomic<Int>(0)
        // Only this group's announcement counts (opening the direct chats before it announces those, too).
        let groupName = "bench fan-out \(runTag())"
        let sockets = try await context.connect(
            tokens: users.map(\.accessToken),
            handler: { index in
                { name, arguments in
                    if name == "messagesSeen" || name == "readState" { readPackets.add(1, ordering: .relaxed) }
                    if name == "chatUpdated", arguments.first?["name"]?.stringValue == groupName { announced.add(1, ordering: .relaxed) }
                    box.withLock { $0.isEmpty ? nil : $0[index] }?.handle(name: name, arguments: arguments)
                }
            },
            onClose: { _ in lost.add(1, ordering: .relaxed) }
        )
        let chatID = try await context.api.createGroup(
            token: sender.accessToken,
            name: groupName,
            memberIDs: users.dropFirst().map(\.id)
        )
        // The new group is announced to every member (`chatUpdated`, with all 1,000 members in it: 60 MB in all): that
        // is group creation, not fan-out, so sending starts once it has arrived (a server that announces nothing, like the
        // Node yardstick, is waited for one second).
        let created = Monotonic.nanoseconds()
        while announced.load(ordering: .relaxed) < users.count {
            let waited = Monotonic.nanoseconds() - created
            if waited > 30_000_000_000 || (waited > 1_000_000_000 && announced.load(ordering: .relaxed) == 0) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let announcedAfter = announced.load(ordering: .relaxed) == 0 ? nil : Double(Monotonic.nanoseconds() - created) / 1e6
        if realistic {
            // Every receiver opens the chat, as the web app does for the chat on screen.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, socket) in sockets.enumerated().dropFirst() {
                    if index > 64 { try await group.next() }
                    group.addTask {
                        let answer = try await socket.emitWithAck("joinChat", encodedArguments: [JSONText.quoted(chatID)])
                        guard answer.first?["ok"]?.boolValue == true else { throw CorrectnessFailure("joinChat was refused") }
                    }
                }
                try await group.waitForAll()
            }
        }
        let latency = LatencyRecorder()
        let trackers = users.indices.map { DeliveryTracker(chatID: chatID, label: "member \($0)", afterSeq: 0, latency: latency) }
        box.withLock { $0 = trackers }
        let acked = AckCounter()
        let tag = runTag()
        let before = context.sample()
        let start = Monotonic.nanoseconds()
        let end = start + UInt64(duration * 1e9)
        let interval = 1e9 / rate
        try await BenchContext.sendPaced(
            sockets[0],
            chatID: chatID,
            start: start,
            end: end,
            interval: interval,
            idPrefix: tag,
            acked: acked,
            typing: realistic
        )
        let sent = acked.value.load(ordering: .relaxed)
        try await DeliveryTracker.awaitAll(trackers, expected: { _ in sent }, timeout: .seconds(60), closedSockets: { lost.load(ordering: .relaxed) })
        let finished = Monotonic.nanoseconds()
        let after = context.sample()
        await BenchContext.closeAll(sockets)
        if lost.load(ordering: .relaxed) > 0 { throw CorrectnessFailure("\(lost.load(ordering: .relaxed)) sockets were closed by the server") }
        let deliveries = sent * users.count
        let histogram = latency.snapshot
        var figures = [
            Figure("deliveries", Double(deliveries) / (Double(finished - start) / 1e9), "deliveries/s", atLeast: 200_000),
            Figure("latency p50", histogram.milliseconds(at: 50), "ms"),
            Figure("latency p99", histogram.milliseconds(at: 99), "ms", atMost: 50),
            Figure("latency max", histogram.maxMilliseconds, "ms"),
        ]
        if let announcedAfter { figures.append(Figure("group announced to all", announcedAfter, "ms")) }
        if realistic {
            figures.append(Figure("read-state packets", Double(readPackets.load(ordering: .relaxed)) / Double(max(sent, 1)), "per message"))
        }
        var result = ScenarioResult(
            scenario: realistic ? "fan-out, realistic" : "fan-out",
            parameters: ["members": String(users.count), "rate": String(Int(rate)), "duration": String(duration), "messages": String(sent)],
            figures: figures,
            resources: ResourceUse(from: before, to: after)
        )
        result.notes.append("\(sent) messages × \(users.count) sockets: every delivery exactly once and in seq order")
        return result
    }
}
