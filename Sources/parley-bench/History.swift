import ArgumentParser
import Foundation
import NIOHTTP1
import SocketIOProtocol

/// `parley-bench history`: pages of a long chat over HTTP.
struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The latest page and random `before` pages of a chat (seeded with `parley seed-history`): p50/p99 per request."
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "The chat to read; the first user of --users must be a member.") var chat: String
    @Option(help: "Requests of each kind.") var requests = 2000
    @Option(help: "Messages per page.") var limit = 50

    func run() async throws {
        let user = try self.options.loadUsers(atLeast: 1)[0]
        let results = try await BenchContext.with(self.options) { context in
            try await Self.measure(context: context, user: user, chatID: self.chat, requests: self.requests, limit: self.limit)
        }
        self.options.print(results)
    }

    static func measure(context: BenchContext, user: BenchUser, chatID: String, requests: Int, limit: Int) async throws -> [ScenarioResult] {
        let path = "/api/v1/chats/\(chatID)/messages?limit=\(limit)"
        // The first page tells the chat's last seq; it is not timed.
        let first = try await Self.page(context: context, user: user, path: path)
        guard let lastSeq = first.last?.seq else { throw CorrectnessFailure("chat \(chatID) has no messages: seed it with `parley seed-history`") }
        var results: [ScenarioResult] = []
        for kind in ["latest page", "random before page"] {
            let latency = LatencyRecorder()
            let before = context.sample()
            for _ in 0..<requests {
                let bound = kind == "latest page" ? nil : Int.random(in: 2...(lastSeq + 1))
                let started = Monotonic.nanoseconds()
                let page = try await Self.page(context: context, user: user, path: path + (bound.map { "&before=\($0)" } ?? ""))
                latency.record(nanoseconds: Monotonic.nanoseconds() - started)
                // A page is the `limit` messages just below the bound, dense and ascending.
                let top = (bound ?? (lastSeq + 1)) - 1
                let expected = Array(max(1, top - limit + 1)...top)
                guard page.map(\.seq) == expected else {
                    throw CorrectnessFailure(
                        "\(path) before \(bound.map(String.init) ?? "none") returned seqs \(page.first?.seq ?? 0)…\(page.last?.seq ?? 0) (\(page.count)), expected \(expected.first!)…\(top)"
                    )
                }
            }
            let histogram = latency.snapshot
            results.append(
                ScenarioResult(
                    scenario: "history \(kind)",
                    parameters: ["chat": chatID, "messages": String(lastSeq), "requests": String(requests), "limit": String(limit)],
                    figures: [
                        Figure("p50", histogram.milliseconds(at: 50), "ms"),
                        Figure("p99", histogram.milliseconds(at: 99), "ms", atMost: 5),
                        Figure("max", histogram.maxMilliseconds, "ms"),
                    ],
                    resources: ResourceUse(from: before, to: context.sample())
                )
            )
        }
        return results
    }

    static func page(context: BenchContext, user: BenchUser, path: String) async throws -> [(seq: Int, id: String)] {
        let (status, body) = try await context.api.call(.GET, path, token: user.accessToken)
        guard status == 200, let messages = body["messages"]?.arrayValue else {
            throw CorrectnessFailure("GET \(path) answered \(status): \(body.jsonText().prefix(300))")
        }
        return messages.map { ($0["seq"]?.intValue ?? -1, $0["id"]?.stringValue ?? "") }
    }
}
