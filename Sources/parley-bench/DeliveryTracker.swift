import SocketIOProtocol
import Synchronization

/// What one socket must receive of one chat: every message exactly once, in seq order; records each delivery's latency.
final class DeliveryTracker: Sendable {
    private struct State {
        var nextSeq: Int
        var received = 0
        var problems: [String] = []
        var problemCount = 0
    }

    let chatID: String
    let label: String
    private let latency: LatencyRecorder?
    private let state: Mutex<State>

    /// Expects seqs from `afterSeq + 1` on; records latency into `latency` unless it is nil (the sender's own socket).
    init(chatID: String, label: String, afterSeq: Int, latency: LatencyRecorder?) {
        self.chatID = chatID
        self.label = label
        self.latency = latency
        self.state = Mutex(State(nextSeq: afterSeq + 1))
    }

    /// Takes a server event: a `newMessage` of the tracked chat is checked and counted, anything else ignored.
    func handle(name: String, arguments: [JSONValue]) {
        guard name == "newMessage", let message = arguments.first, message["chatId"]?.stringValue == self.chatID else { return }
        let arrived = Monotonic.nanoseconds()
        let seq = message["seq"]?.intValue ?? -1
        self.state.withLock { state in
            state.received += 1
            if seq != state.nextSeq {
                state.problemCount += 1
                if state.problems.count < 5 {
                    let what = seq < state.nextSeq ? "a repeat or out-of-order delivery" : "a gap"
                    state.problems.append("\(self.label) got seq \(seq) where \(state.nextSeq) was due (\(what))")
                }
            }
            state.nextSeq = max(state.nextSeq, seq + 1)
        }
        if let latency, let sent = message["text"]?.stringValue.flatMap(SendStamp.parse) {
            latency.record(nanoseconds: arrived > sent ? arrived - sent : 0)
        }
    }

    /// How many messages of the chat arrived so far.
    var received: Int { self.state.withLock { $0.received } }

    /// Throws unless exactly `expected` messages arrived, each once and in order.
    func check(expected: Int) throws {
        try self.state.withLock { state in
            if state.problemCount > 0 {
                throw CorrectnessFailure(
                    "\(state.problemCount) deliveries out of order or repeated; first: " + state.problems.joined(separator: "; ")
                )
            }
            if state.received != expected {
                throw CorrectnessFailure("\(self.label) received \(state.received) messages of chat \(self.chatID), expected \(expected)")
            }
        }
    }

    /// Waits until every tracker has `expected(tracker)` messages, or `timeout` passes; then checks them all.
    static func awaitAll(
        _ trackers: [DeliveryTracker],
        expected: (DeliveryTracker) -> Int,
        timeout: Duration,
        closedSockets: () -> Int = { 0 }
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, trackers.contains(where: { $0.received < expected($0) }) {
            // A socket the server closed gets nothing more: waiting longer would only hide why.
            let closed = closedSockets()
            if closed > 0 {
                throw CorrectnessFailure(
                    "the server closed \(closed) sockets before they had every message (it closes a socket whose outbound queue overflows: "
                        + "this client did not read fast enough)"
                )
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        for tracker in trackers { try tracker.check(expected: expected(tracker)) }
    }
}

/// The send time carried in a benchmark message's text, so the receiver can tell the latency without shared state.
enum SendStamp {
    static let prefix = "bench "

    static func text(sentAt nanoseconds: UInt64) -> String { Self.prefix + String(nanoseconds) }

    static func parse(_ text: String) -> UInt64? {
        guard text.hasPrefix(Self.prefix) else { return nil }
        return UInt64(text.dropFirst(Self.prefix.count))
    }
}
