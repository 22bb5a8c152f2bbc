import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import SocketIOProtocol
import Synchronization

/// `parley-bench`: a load generator that drives a running Parley over its public HTTP and Socket.IO interfaces.
@main
struct ParleyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley-bench",
        abstract: "Load scenarios against a running Parley; each checks that every message arrives exactly once and in seq order.",
        subcommands: [
            Throughput.self, FanOut.self, Storm.self, Connections.self, History.self, Footprint.self, Report.self, Receivers.self, Holders.self,
        ]
    )
}

/// Where the server is, who to act as, and how to report.
struct BenchOptions: ParsableArguments {
    @Option(help: "Parley's base URL.") var url = "http://127.0.0.1:3000"
    @Option(help: "JSON lines of users with access tokens, as `parley users create` prints them.") var users: String?
    @Option(name: .customLong("server-pid"), help: "The server's pid: its CPU and memory (from /proc) are reported.") var serverPID: Int32?
    @Flag(help: "Print one JSON line per result instead of the table.") var json = false

    /// The users of `--users`; at least `count` of them, or a one-line error.
    func loadUsers(atLeast count: Int) throws -> [BenchUser] {
        guard let path = self.users else { throw ValidationError("--users is required: the output of `parley users create`") }
        let users = try BenchUser.load(path: path)
        guard users.count >= count else { throw ValidationError("this scenario needs \(count) users; \(path) has \(users.count)") }
        return users
    }

    /// Prints `results` as the table or as JSON lines.
    func print(_ results: [ScenarioResult]) {
        if self.json {
            for result in results { Swift.print(result.jsonLine) }
        } else {
            Swift.print(ScenarioResult.table(results))
        }
    }
}

/// What every scenario works with.
struct BenchContext: Sendable {
    let api: ParleyAPI
    let serverPID: Int32?
    let logger: Logger

    static func with<T: Sendable>(_ options: BenchOptions, _ body: (BenchContext) async throws -> T) async throws -> T {
        var logger = Logger(label: "parley-bench")
        logger.logLevel = .warning
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(timeout: .init(connect: .seconds(10), read: .seconds(60))))
        let context = BenchContext(api: ParleyAPI(baseURL: options.url, http: http), serverPID: options.serverPID, logger: logger)
        do {
            let result = try await body(context)
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    func sample() -> ResourceSample { ResourceSample.take(serverPID: self.serverPID) }

    /// Connects one socket per token, `concurrency` handshakes at a time, each with its own event handler.
    func connect(
        tokens: [String],
        concurrency: Int = 64,
        handler: @escaping @Sendable (Int) -> SocketIOClient.EventHandler,
        onClose: @escaping @Sendable ((any Error)?) -> Void = { _ in }
    ) async throws -> [SocketIOClient] {
        var clients = [SocketIOClient?](repeating: nil, count: tokens.count)
        try await withThrowingTaskGroup(of: (Int, SocketIOClient).self) { group in
            var next = 0
            func start() {
                let index = next
                next += 1
                group.addTask {
                    (
                        index,
                        try await SocketIOClient.connect(
                            baseURL: self.api.baseURL,
                            token: tokens[index],
                            logger: self.logger,
                            onEvent: handler(index),
                            onClose: onClose
                        )
                    )
                }
            }
            while next < min(concurrency, tokens.count) { start() }
            while let (index, client) = try await group.next() {
                clients[index] = client
                if next < tokens.count { start() }
            }
        }
        return clients.map { $0! }
    }

    /// Sends one text message with an ack; throws unless the server answers ok.
    static func send(_ client: SocketIOClient, chatID: String, text: String, clientMessageID: String) async throws {
        let payload =
            #"{"chatId":"# + JSONText.quoted(chatID) + #","text":"# + JSONText.quoted(text) + #","clientMessageId":"#
            + JSONText.quoted(clientMessageID) + "}"
        let answer = try await client.emitWithAck("sendMessage", encodedArguments: [payload])
        guard answer.first?["ok"]?.boolValue == true else {
            throw CorrectnessFailure("sendMessage was refused: \(answer.first?.jsonText().prefix(300) ?? "no answer")")
        }
    }

    /// Open-loop sends from `start` until `end`, one every `interval` nanoseconds, each acked before `acked` counts it.
    /// Each message is stamped with its intended send time, so a late send shows as latency (no coordinated omission).
    static func sendPaced(
        _ client: SocketIOClient,
        chatID: String,
        start: UInt64,
        end: UInt64,
        interval: Double,
        idPrefix: String,
        acked: AckCounter,
        typing: Bool = false
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { sends in
            var sequence = 0
            while true {
                let due = start + UInt64(Double(sequence) * interval)
                if due >= end { break }
                try await sleep(untilMonotonic: due)
                let id = "\(idPrefix)-\(sequence)"
                sends.addTask {
                    // As a person types: `typing`, then the message.
                    if typing { try await client.emit("typing", encodedArguments: [#"{"chatId":"# + JSONText.quoted(chatID) + "}"]) }
                    try await Self.send(client, chatID: chatID, text: SendStamp.text(sentAt: due), clientMessageID: id)
                    acked.value.add(1, ordering: .relaxed)
                }
                sequence += 1
            }
            try await sends.waitForAll()
        }
    }

    /// Closes every client, a few at a time.
    static func closeAll(_ clients: [SocketIOClient]) async {
        await withTaskGroup(of: Void.self) { group in
            for (index, client) in clients.enumerated() {
                if index >= 256 { await group.next() }
                group.addTask { await client.close() }
            }
        }
    }
}

/// Sleeps until the monotonic clock reads `nanoseconds`.
func sleep(untilMonotonic nanoseconds: UInt64) async throws {
    let now = Monotonic.nanoseconds()
    if nanoseconds > now { try await Task.sleep(nanoseconds: nanoseconds - now) }
}

/// A short random tag, so client message ids of one run never collide with an earlier run's.
func runTag() -> String { String(UInt64.random(in: 0..<UInt64.max), radix: 36) }

/// `parley-bench report FILE…`: the table of result lines written with `--json`.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the table of JSON result lines (files written with --json).")

    @Argument(help: "Files of JSON result lines.") var files: [String]

    func run() throws {
        var results: [ScenarioResult] = []
        for file in self.files {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read \(file)") }
            for line in text.split(separator: "\n") where line.hasPrefix("{") {
                results.append(try JSONDecoder().decode(ScenarioResult.self, from: Data(line.utf8)))
            }
        }
        print(ScenarioResult.table(results))
    }
}
