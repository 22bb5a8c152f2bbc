import ArgumentParser
import Foundation
import Synchronization

/// `parley-bench connections`: many idle authenticated sockets, and what each costs the server in memory.
struct Connections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "N idle authenticated sockets: server RSS per socket = (RSS with N − RSS before) / N.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Sockets to open (spread over the users); one process can hold about 20,000 open files here.") var count = 1000
    @Option(help: "Seconds to hold them before measuring.") var settle = 3.0
    @Option(help: "Processes the sockets are spread over (this one included): each can hold about 20,000 open files.")
    var processes = 1

    func validate() throws {
        guard self.processes >= 1, self.processes <= 16 else { throw ValidationError("--processes is 1 to 16") }
    }

    func run() async throws {
        guard let pid = self.options.serverPID else { throw ValidationError("--server-pid is required: the figure is the server's memory") }
        let users = try self.options.loadUsers(atLeast: 1)
        let result = try await BenchContext.with(self.options) { context in
            try await Self.measure(
                context: context,
                users: users,
                count: self.count,
                settle: self.settle,
                serverPID: pid,
                processes: self.processes,
                options: self.options
            )
        }
        self.options.print([result])
    }

    static func measure(
        context: BenchContext,
        users: [BenchUser],
        count: Int,
        settle: Double,
        serverPID: Int32,
        processes: Int = 1,
        options: BenchOptions? = nil
    ) async throws -> ScenarioResult {
        guard let rssBefore = ResourceSample.residentBytes(of: serverPID) else { throw CorrectnessFailure("no /proc/\(serverPID)/status") }
        let before = context.sample()
        // This process holds the first share; each other one holds a share of its own (`parley-bench holders`).
        let share = count / processes
        var children: [ReceiverProcess] = []
        defer { for child in children { child.stop() } }
        if processes > 1, let options {
            for index in 1..<processes {
                let from = index * share
                let arguments = ["holders", "--from", String(from), "--count", String(index == processes - 1 ? count - from : share)]
                children.append(try ReceiverProcess(options: options, arguments: arguments))
            }
        }
        var (sockets, notes, lost) = await Self.hold(context: context, users: users, from: 0, count: processes > 1 ? share : count)
        var held = sockets.count
        for child in children {
            let (count, note) = try await child.connected()
            held += count
            if let note { notes.append(note) }
        }
        let opened = Monotonic.nanoseconds()
        try await Task.sleep(for: .seconds(settle))
        guard let rssWith = ResourceSample.residentBytes(of: serverPID) else { throw CorrectnessFailure("the server (pid \(serverPID)) is gone") }
        var childCPU: UInt64 = 0
        for child in children {
            child.say("close")
            childCPU += try await child.report().cpuNanoseconds
        }
        let after = context.sample()
        if lost.value.load(ordering: .relaxed) > 0 {
            throw CorrectnessFailure("\(lost.value.load(ordering: .relaxed)) idle sockets were closed by the server")
        }
        await BenchContext.closeAll(sockets)
        sockets = []
        guard held > 0 else { throw CorrectnessFailure(notes.first ?? "no socket connected") }
        let perSocket = (Double(rssWith) - Double(rssBefore)) / Double(held) / 1024
        var resources = ResourceUse(from: before, to: after)
        resources.addLoadGenerator(cpuNanoseconds: childCPU, over: after.wallNanoseconds - before.wallNanoseconds)
        var parameters = ["asked": String(count), "users": String(min(users.count, count))]
        if processes > 1 { parameters["processes"] = String(processes) }
        var result = ScenarioResult(
            scenario: "connections",
            parameters: parameters,
            figures: [
                Figure("sockets held", Double(held), "sockets", atLeast: 20_000),
                Figure("server RSS per socket", perSocket, "KiB", atMost: 20),
                Figure("connect rate", Double(held) / (Double(opened - before.wallNanoseconds) / 1e9), "sockets/s"),
            ],
            resources: resources
        )
        result.notes = notes + ["server RSS \(rssBefore / 1_048_576) MiB before, \(rssWith / 1_048_576) MiB with the sockets open"]
        if processes > 1 { result.notes.append("load generator: \(processes) processes, CPU summed") }
        return result
    }

    /// Opens `count` idle sockets, the users taken in turn from the `from`-th socket's on. In batches, so that running
    /// into the open-file limit ends with what was reached (and a note) instead of nothing.
    static func hold(
        context: BenchContext,
        users: [BenchUser],
        from: Int,
        count: Int,
        concurrency: Int = 64
    ) async -> (sockets: [SocketIOClient], notes: [String], lost: AckCounter) {
        let lost = AckCounter()
        var sockets: [SocketIOClient] = []
        var notes: [String] = []
        while sockets.count < count {
            let batch = min(1000, count - sockets.count)
            let tokens = (from + sockets.count..<from + sockets.count + batch).map { users[$0 % users.count].accessToken }
            do {
                sockets += try await context.connect(
                    tokens: tokens,
                    concurrency: concurrency,
                    handler: { _ in { _, _ in } },
                    onClose: { _ in lost.value.add(1, ordering: .relaxed) }
                )
            } catch {
                notes.append("stopped at \(sockets.count) sockets of \(count): \(error)")
                break
            }
        }
        return (sockets, notes, lost)
    }
}

/// `parley-bench holders` (internal): a share of the `connections` scenario's idle sockets in a process of its own,
/// run by `connections --processes N` (and the storm's sockets, run by `storm --processes N`). It prints `connected N
/// [note]`, reads `close`, prints `report JSON`. With `--on-go` it first prints `ready` and connects once it reads `go`.
struct Holders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A share of the connections scenario's idle sockets (run by `connections --processes N`).",
        shouldDisplay: false
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "The first socket's place: users are taken in turn from there.") var from: Int
    @Option(help: "Sockets to open.") var count: Int
    @Option(help: "Sockets connecting at once.") var concurrency = 64
    @Flag(help: "Say `ready`, and connect once the parent says `go`.") var onGo = false

    func run() async throws {
        let users = try self.options.loadUsers(atLeast: 1)
        try await BenchContext.with(self.options) { context in
            if self.onGo {
                Receivers.say("ready")
                _ = try Receivers.expect("go")
            }
            let cpuBefore = ResourceSample.take(serverPID: nil).ownCPUNanoseconds
            let (sockets, notes, lost) = await Connections.hold(
                context: context,
                users: users,
                from: self.from,
                count: self.count,
                concurrency: self.concurrency
            )
            Receivers.say("connected \(sockets.count)" + (notes.first.map { " " + $0 } ?? ""))
            _ = readLine()
            var report = ShareReport()
            if lost.value.load(ordering: .relaxed) > 0 {
                report.error = "\(lost.value.load(ordering: .relaxed)) idle sockets were closed by the server"
            }
            report.cpuNanoseconds = ResourceSample.take(serverPID: nil).ownCPUNanoseconds - cpuBefore
            try report.say()
            await BenchContext.closeAll(sockets)
        }
    }
}
