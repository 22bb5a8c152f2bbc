import ArgumentParser
import Foundation
import Synchronization

/// `parley-bench connections`: many idle authenticated sockets, and what each costs the server in memory.
struct Connections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "N idle authenticated sockets: server RSS per socket = (RSS with N − RSS before) / N.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Sockets to open (spread over the users); one process can hold about 20,000 open files here.") var count = 1000
    @Option(help: "Seconds to hold them before measuring.") var settle = 3.0

    func run() async throws {
        guard let pid = self.options.serverPID else { throw ValidationError("--server-pid is required: the figure is the server's memory") }
        let users = try self.options.loadUsers(atLeast: 1)
        let result = try await BenchContext.with(self.options) { context in
            try await Self.measure(context: context, users: users, count: self.count, settle: self.settle, serverPID: pid)
        }
        self.options.print([result])
    }

    static func measure(context: BenchContext, users: [BenchUser], count: Int, settle: Double, serverPID: Int32) async throws -> ScenarioResult {
        guard let rssBefore = ResourceSample.residentBytes(of: serverPID) else { throw CorrectnessFailure("no /proc/\(serverPID)/status") }
        let before = context.sample()
        let lost = Atomic<Int>(0)
        var sockets: [SocketIOClient] = []
        var notes: [String] = []
        // Batches, so that running into the open-file limit ends the scenario with what was reached instead of nothing.
        while sockets.count < count {
            let batch = min(1000, count - sockets.count)
            let tokens = (sockets.count..<sockets.count + batch).map { users[$0 % users.count].accessToken }
            do {
                sockets += try await context.connect(tokens: tokens, handler: { _ in { _, _ in } }, onClose: { _ in lost.add(1, ordering: .relaxed) })
            } catch {
                notes.append("stopped at \(sockets.count) sockets of \(count): \(error)")
                break
            }
        }
        let opened = Monotonic.nanoseconds()
        try await Task.sleep(for: .seconds(settle))
        guard let rssWith = ResourceSample.residentBytes(of: serverPID) else { throw CorrectnessFailure("the server (pid \(serverPID)) is gone") }
        let after = context.sample()
        if lost.load(ordering: .relaxed) > 0 { throw CorrectnessFailure("\(lost.load(ordering: .relaxed)) idle sockets were closed by the server") }
        await BenchContext.closeAll(sockets)
        guard !sockets.isEmpty else { throw CorrectnessFailure(notes.first ?? "no socket connected") }
        let perSocket = (Double(rssWith) - Double(rssBefore)) / Double(sockets.count) / 1024
        var result = ScenarioResult(
            scenario: "connections",
            parameters: ["asked": String(count), "users": String(min(users.count, count))],
            figures: [
                Figure("sockets held", Double(sockets.count), "sockets", atLeast: 20_000),
                Figure("server RSS per socket", perSocket, "KiB", atMost: 20),
                Figure("connect rate", Double(sockets.count) / (Double(opened - before.wallNanoseconds) / 1e9), "sockets/s"),
            ],
            resources: ResourceUse(from: before, to: after)
        )
        result.notes = notes + ["server RSS \(rssBefore / 1_048_576) MiB before, \(rssWith / 1_048_576) MiB with the sockets open"]
        return result
    }
}
