import ArgumentParser
import Foundation
import NIOHTTP1
import SocketIOProtocol

/// `parley-bench history`: pages of a long chat over HTTP.
struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The latest page and random `before` pages of a chat (seeded with `parley seed-history`), and searches in it: p50/p99 per request."
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
        for kind in SearchKind.allCases {
            results.append(
                try await Self.measureSearch(context: context, user: user, chatID: chatID, lastSeq: lastSeq, kind: kind, requests: requests)
            )
        }
        return results
    }

    /// What the searches of the seeded chat (texts `Message <seq>`) look for.
    enum SearchKind: String, CaseIterable {
        /// A random seq: one hit, anywhere in the index.
        case number = "search a number"
        /// The word every message has: a million hits, of which the newest page is wanted.
        case commonWord = "search a common word"
        /// The first three digits of a random seq as a prefix (`123*`): about 1,100 hits in a million, spread over the chat.
        case numberPrefix = "search a number prefix"
        /// The start of the word every message has (`mess*`): the slow case of SQLite's FTS5, which merges every row id
        /// of the words it starts before reading the newest; measured, with no target (see docs/benchmarks.md).
        case commonPrefix = "search a common prefix"

        func query(lastSeq: Int) -> String {
            switch self {
            case .number: String(Int.random(in: 1...lastSeq))
            case .commonWord: "message"
            case .numberPrefix: "\(String(Int.random(in: 1...lastSeq)).prefix(3))*"
            case .commonPrefix: "mess*"
            }
        }

        /// Whether `text`, a hit's, matches the query.
        func matches(_ text: String, query: String) -> Bool {
            switch self {
            case .number: text == "Message \(query)"
            case .commonWord, .commonPrefix: text.hasPrefix("Message ")
            case .numberPrefix: text.hasPrefix("Message \(query.dropLast())")
            }
        }
    }

    /// `GET /search` in the seeded chat: every answer is checked (the right hits, newest first, marked).
    static func measureSearch(
        context: BenchContext,
        user: BenchUser,
        chatID: String,
        lastSeq: Int,
        kind: SearchKind,
        requests: Int
    ) async throws -> ScenarioResult {
        let limit = 20
        let latency = LatencyRecorder()
        let before = context.sample()
        for _ in 0..<requests {
            let query = kind.query(lastSeq: lastSeq)
            let path = "/api/v1/search?q=\(query.replacingOccurrences(of: "*", with: "%2A"))&chatId=\(chatID)&limit=\(limit)"
            let started = Monotonic.nanoseconds()
            let (status, body) = try await context.api.call(.GET, path, token: user.accessToken)
            latency.record(nanoseconds: Monotonic.nanoseconds() - started)
            guard status == 200, let results = body["results"]?.arrayValue else {
                throw CorrectnessFailure("GET \(path) answered \(status): \(body.jsonText().prefix(300))")
            }
            let seqs = results.map { $0["message"]?["seq"]?.intValue ?? -1 }
            let matches = results.allSatisfy { result in
                let marked = !(result["highlights"]?.arrayValue ?? []).isEmpty
                return marked && kind.matches(result["message"]?["text"]?.stringValue ?? "", query: query)
            }
            let newestFirst = zip(seqs, seqs.dropFirst()).allSatisfy { $0 > $1 }
            // The number is the one message; the common word or prefix fills the page from the chat's last message down;
            // a number prefix fills the page, or finds the number itself among fewer hits.
            let complete =
                switch kind {
                case .number: seqs == [Int(query)!]
                case .commonWord, .commonPrefix: seqs == Array(stride(from: lastSeq, to: lastSeq - limit, by: -1))
                case .numberPrefix: seqs.count == limit || seqs.contains(Int(query.dropLast())!)
                }
            guard matches, newestFirst, complete else {
                throw CorrectnessFailure("GET \(path) returned seqs \(seqs.prefix(5))… (\(seqs.count)): not the newest matches")
            }
        }
        let histogram = latency.snapshot
        return ScenarioResult(
            scenario: "history \(kind.rawValue)",
            parameters: ["chat": chatID, "messages": String(lastSeq), "requests": String(requests), "limit": String(limit)],
            figures: [
                Figure("p50", histogram.milliseconds(at: 50), "ms"),
                kind == .commonPrefix
                    ? Figure("p99", histogram.milliseconds(at: 99), "ms") : Figure("p99", histogram.milliseconds(at: 99), "ms", atMost: 50),
                Figure("max", histogram.maxMilliseconds, "ms"),
            ],
            resources: ResourceUse(from: before, to: context.sample())
        )
    }

    static func page(context: BenchContext, user: BenchUser, path: String) async throws -> [(seq: Int, id: String)] {
        let (status, body) = try await context.api.call(.GET, path, token: user.accessToken)
        guard status == 200, let messages = body["messages"]?.arrayValue else {
            throw CorrectnessFailure("GET \(path) answered \(status): \(body.jsonText().prefix(300))")
        }
        return messages.map { ($0["seq"]?.intValue ?? -1, $0["id"]?.stringValue ?? "") }
    }
}
