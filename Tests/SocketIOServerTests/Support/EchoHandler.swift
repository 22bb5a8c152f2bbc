import HTTPTypes
import SocketIOProtocol
import SocketIOServer
import Synchronization

/// The tests' handler: token "good" (auth data, `Authorization: Bearer`, or `?token=`) is user "alice"; it echoes,
/// emits on request, and records every call.
final class EchoHandler: SocketIOHandler {
    /// One handler call.
    enum Call: Sendable, Equatable {
        case connected(user: String)
        case received(event: String, arguments: [JSONValue])
        case disconnected(reason: String)
    }

    let calls = EventLog<Call>()
    private let server = Mutex<SocketIOServer?>(nil)

    /// Connects the handler to the server it emits through.
    func attach(_ server: SocketIOServer) {
        self.server.withLock { $0 = server }
    }

    func authenticate(auth: JSONValue?, handshake: SocketIOHandshake) async -> SocketIOAdmission? {
        let token =
            auth?["token"]?.stringValue ?? handshake.headers[.authorization].map { String($0.dropFirst("Bearer ".count)) }
            ?? handshake.query["token"]
        return token == "good" ? SocketIOAdmission(userID: "alice") : nil
    }

    func connected(_ socket: SocketIOSocket) async {
        self.calls.append(.connected(user: socket.userID))
    }

    func received(event: String, arguments: [JSONValue], from socket: SocketIOSocket, ack: SocketIOAck?) async {
        self.calls.append(.received(event: event, arguments: arguments))
        switch event {
        case "echo":
            if let ack {
                ack(encodedArguments: arguments.map { $0.jsonText() })
            } else {
                socket.emit(EncodedEvent(name: "echo", arguments: arguments))
            }
        case "pleaseEmit":
            self.server.withLock { $0 }?.emit(EncodedEvent(name: "greeting", arguments: ["hello"]), toUsers: [socket.userID])
        case "emitMany":
            for index in 0..<(arguments.first?.intValue ?? 0) {
                socket.emit(EncodedEvent(name: "n", arguments: [.number(Double(index))]))
            }
        case "bye":
            socket.disconnect()
        default:
            break
        }
    }

    func disconnected(_ socket: SocketIOSocket, reason: String) async {
        self.calls.append(.disconnected(reason: reason))
    }
}

extension [EchoHandler.Call] {
    /// The reasons of the `disconnected` calls, in order.
    var disconnectReasons: [String] {
        self.compactMap { call in
            if case .disconnected(let reason) = call { return reason }
            return nil
        }
    }

    /// How many sockets connected.
    var connectedCount: Int {
        self.count { if case .connected = $0 { true } else { false } }
    }
}
