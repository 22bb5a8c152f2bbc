import NIOCore
import Synchronization

/// The live sessions by sid and the connected sockets by user: what the server routes requests and emits with.
final class SocketRegistry: Sendable {
    struct State: Sendable {
        var connections: [String: SocketIOConnection] = [:]
        var sockets: [String: [String: SocketIOSocket]] = [:]
        var socketCount = 0
    }

    private let state = Mutex(State())

    /// The connection of session `sid`, while the session can still deliver packets.
    func connection(sid: String) -> SocketIOConnection? {
        self.state.withLock { $0.connections[sid] }
    }

    /// Registers a new session.
    func add(_ connection: SocketIOConnection) {
        self.state.withLock { $0.connections[connection.session.sid] = connection }
    }

    /// Forgets a finished session.
    func remove(_ connection: SocketIOConnection) {
        self.state.withLock { state in
            if state.connections[connection.session.sid] === connection {
                state.connections[connection.session.sid] = nil
            }
        }
    }

    /// Queues an admitted socket's CONNECT reply and adds the socket to its user's room, in one step under this lock,
    /// unless the socket has already left (a close can race the admission).
    ///
    /// Emitters collect sockets under this lock, so an emit that finds the socket is queued after the reply; and the
    /// client cannot read the reply (and make anyone emit to it) before the socket can be found. The reply is queued
    /// past the queue's limit rather than closing the session: a close comes back here to remove the socket.
    func admit(_ socket: SocketIOSocket, reply: ByteBuffer) {
        self.state.withLock { state in
            guard socket.connection.socket === socket else { return }
            socket.connection.session.enqueue(reply, overflowCloses: false)
            guard state.sockets[socket.userID, default: [:]].updateValue(socket, forKey: socket.id) == nil else { return }
            state.socketCount += 1
        }
    }

    /// Removes a socket from its user's room.
    func remove(_ socket: SocketIOSocket) {
        self.state.withLock { state in
            guard state.sockets[socket.userID]?.removeValue(forKey: socket.id) != nil else { return }
            state.socketCount -= 1
            if state.sockets[socket.userID]?.isEmpty == true {
                state.sockets[socket.userID] = nil
            }
        }
    }

    /// Every socket of `userID`.
    func sockets(ofUser userID: String) -> [SocketIOSocket] {
        self.state.withLock { state in
            guard let sockets = state.sockets[userID] else { return [] }
            return Array(sockets.values)
        }
    }

    /// The sockets of all `users`, collected under one lock; emitting happens after it is released, because an
    /// overflowing queue closes its session, which comes back here to remove the socket.
    func sockets(ofUsers users: some Sequence<String>) -> [SocketIOSocket] {
        self.state.withLock { state in
            var found: [SocketIOSocket] = []
            for user in users {
                if let sockets = state.sockets[user] {
                    found.append(contentsOf: sockets.values)
                }
            }
            return found
        }
    }

    /// The number of connected sockets.
    var socketCount: Int { self.state.withLock { $0.socketCount } }

    /// The number of users with a connected socket.
    var userCount: Int { self.state.withLock { $0.sockets.count } }

    /// The number of live sessions, connected or not.
    var sessionCount: Int { self.state.withLock { $0.connections.count } }

    /// Every live session.
    var allConnections: [SocketIOConnection] { self.state.withLock { Array($0.connections.values) } }
}
