import ParleyCore
import SocketIOServer
import Synchronization

/// Gathers presence changes for a short window and sends each socket the contract's `userOnline` / `userOffline` for each
/// of up to ``listThreshold`` other people who came or went, or, beyond that, one `presence` event
/// `{"online":[userId],"offline":[userId]}` listing them all: a reconnect storm costs one packet per socket per window.
///
/// Without it, 1,000 members of one group reconnecting at once (a restart, a deploy) cost a million packets: each arrival
/// told every other member. With it they cost about one packet per member per window. A change also goes to the person
/// it is about, so that every member of a group gets the same list and it is encoded once for all of them (the list may
/// name the recipient); one's own change alone is never sent to oneself.
///
/// Memory: one entry per change in the window (the user and whether online), and for each recipient the positions of the
/// changes addressed to them (4 bytes each): at most the sum of the changed users' contacts (plus one each) per window.
final class PresenceBatch: Sendable {
    /// How long changes gather after the first one.
    let window: Duration
    /// Up to this many other people's changes in one window, a socket gets the contract's part-1 event for each (what
    /// every client understands); beyond it, one `presence` list.
    static let listThreshold = 8
    private let state = Mutex(State())
    private let queued = Wakeup()

    struct State {
        /// The changes of this window, in order.
        var changes: [(userID: String, online: Bool)] = []
        /// For each recipient, the positions in ``changes`` addressed to them, in order.
        var addressed: [String: [Int32]] = [:]
    }

    /// One person's last change in a window, as some recipients saw it (recipients addressed different changes of the
    /// same person see different last ones).
    struct Change: Hashable {
        var userID: String
        var online: Bool
    }

    init(window: Duration = .milliseconds(200)) {
        self.window = window
    }

    /// Queues the news that `userID` came (`online`) or went for `contacts` (and `userID` itself).
    func add(_ userID: String, online: Bool, to contacts: [String]) {
        guard !contacts.isEmpty else { return }
        self.state.withLock { state in
            let position = Int32(state.changes.count)
            state.changes.append((userID, online))
            state.addressed[userID, default: []].append(position)
            for contact in contacts where contact != userID { state.addressed[contact, default: []].append(position) }
        }
        self.queued.ring()
    }

    /// Sends each window's changes through `emit` until cancelled.
    func run(emit: @Sendable (EncodedEvent, [String]) -> Void) async {
        while !Task.isCancelled {
            if self.state.withLock({ $0.changes.isEmpty }) {
                await self.queued.wait(timeout: .seconds(1))
                continue
            }
            try? await Task.sleep(for: self.window)
            for (event, recipients) in self.flush() { emit(event, recipients) }
        }
    }

    /// This window's packets, each with its recipients; empties the window.
    func flush() -> [(EncodedEvent, [String])] {
        let (changes, addressed) = self.state.withLock { state in
            defer { state = State() }
            return (state.changes, state.addressed)
        }
        // Recipients addressed the same changes share one packet.
        var recipientsOf: [[Int32]: [String]] = [:]
        for (recipient, positions) in addressed { recipientsOf[positions, default: []].append(recipient) }
        var packets: [(EncodedEvent, [String])] = []
        // Recipients to whom few other people changed: the part-1 events, each encoded once for all who get it.
        var singles: [Change: [String]] = [:]
        for (positions, recipients) in recipientsOf {
            // The last change of each user counts.
            var last: [String: Bool] = [:]
            var order: [String] = []
            for position in positions.reversed() {
                let change = changes[Int(position)]
                guard last[change.userID] == nil else { continue }
                last[change.userID] = change.online
                order.append(change.userID)
            }
            order.reverse()
            var listed: [String] = []
            for recipient in recipients {
                // Your own coming and going is not news to you.
                let others = last[recipient] == nil ? order.count : order.count - 1
                if others > Self.listThreshold {
                    listed.append(recipient)
                } else {
                    for other in order where other != recipient {
                        if let online = last[other] { singles[Change(userID: other, online: online), default: []].append(recipient) }
                    }
                }
            }
            guard !listed.isEmpty else { continue }
            let online = order.filter { last[$0] == true }.map(JSONText.quote).joined(separator: ",")
            let offline = order.filter { last[$0] == false }.map(JSONText.quote).joined(separator: ",")
            let payload = #"{"online":["# + online + #"],"offline":["# + offline + "]}"
            packets.append((EncodedEvent(name: "presence", encodedArguments: [payload]), listed))
        }
        for (change, recipients) in singles { packets.append((ChatFanout.presenceEvent(change.userID, online: change.online), recipients)) }
        return packets
    }
}
