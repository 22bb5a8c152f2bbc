import Foundation
import HummingbirdWSClient
import Logging
import NIOWebSocket
import SocketIOProtocol
import Synchronization

/// A Socket.IO v4 client over WebSocket only (no polling), with the project's packet library as its codec.
final class SocketIOClient: Sendable {
    /// Called for every server event, on the connection's task: keep it short.
    typealias EventHandler = @Sendable (_ name: String, _ arguments: [JSONValue]) -> Void

    private enum AckSlot {
        case waiting(CheckedContinuation<[JSONValue], any Error>?)
        case arrived([JSONValue])
    }

    private struct State {
        var outbound: WebSocketOutboundWriter?
        var handshake: CheckedContinuation<Void, any Error>?
        var nextAckID: UInt64 = 0
        var acks: [UInt64: AckSlot] = [:]
        var closedBy: (any Error)?
    }

    private let state = Mutex(State())
    private let onEvent: EventHandler
    private let onClose: @Sendable ((any Error)?) -> Void
    private let connection = Mutex<Task<Void, Never>?>(nil)

    private init(onEvent: @escaping EventHandler, onClose: @escaping @Sendable ((any Error)?) -> Void) {
        self.onEvent = onEvent
        self.onClose = onClose
    }

    /// Opens a WebSocket to `baseURL`'s `/socket.io/`, joins the main namespace with `token`, and returns once admitted.
    static func connect(
        baseURL: String,
        token: String,
        logger: Logger,
        onEvent: @escaping EventHandler,
        onClose: @escaping @Sendable ((any Error)?) -> Void = { _ in }
    ) async throws -> SocketIOClient {
        let client = SocketIOClient(onEvent: onEvent, onClose: onClose)
        let url = baseURL.replacingOccurrences(of: "http://", with: "ws://") + "/socket.io/?EIO=4&transport=websocket"
        let connect = SocketPacket(type: .connect, data: #"{"token":"# + JSONText.quoted(token) + "}").encoded()
        try await withCheckedThrowingContinuation { (handshake: CheckedContinuation<Void, any Error>) in
            client.state.withLock { $0.handshake = handshake }
            client.connection.withLock {
                $0 = Task {
                    var failure: (any Error)?
                    do {
                        // Frames as large as the server's maxPayload: a big group's chatUpdated is far beyond the 16 KiB default.
                        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
                        try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, outbound, _ in
                            try await client.serve(inbound: inbound, outbound: outbound, connect: connect)
                        }
                    } catch {
                        failure = error
                    }
                    client.finish(failure ?? SocketIOClientError.closedByServer)
                }
            }
        }
        return client
    }

    /// Emits `name` with already-encoded JSON arguments, asking no ack.
    func emit(_ name: String, encodedArguments: [String]) async throws {
        let outbound = try self.state.withLock { state -> WebSocketOutboundWriter in
            if let error = state.closedBy { throw error }
            guard let outbound = state.outbound else { throw SocketIOClientError.notConnected }
            return outbound
        }
        try await outbound.write(.text("4" + SocketPacket.event(name, encodedArguments: encodedArguments, ackID: nil).encoded()))
    }

    /// Emits `name` with already-encoded JSON arguments and waits for the server's ack.
    func emitWithAck(_ name: String, encodedArguments: [String]) async throws -> [JSONValue] {
        let (id, outbound) = try self.state.withLock { state -> (UInt64, WebSocketOutboundWriter) in
            if let error = state.closedBy { throw error }
            guard let outbound = state.outbound else { throw SocketIOClientError.notConnected }
            let id = state.nextAckID
            state.nextAckID += 1
            state.acks[id] = .waiting(nil)
            return (id, outbound)
        }
        let packet = SocketPacket.event(name, encodedArguments: encodedArguments, ackID: id)
        try await outbound.write(.text("4" + packet.encoded()))
        // The ack may have come back before this task got here: the slot keeps it.
        return try await withCheckedThrowingContinuation { continuation in
            let ready = self.state.withLock { state -> Result<[JSONValue], any Error>? in
                switch state.acks[id] {
                case .arrived(let arguments):
                    state.acks[id] = nil
                    return .success(arguments)
                case .waiting:
                    if let error = state.closedBy { return .failure(error) }
                    state.acks[id] = .waiting(continuation)
                    return nil
                case nil:
                    return .failure(state.closedBy ?? SocketIOClientError.closedByServer)
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// Closes the WebSocket and waits for the connection to end.
    func close() async {
        let outbound = self.state.withLock { state in
            // A close asked for is not a failure: `onClose` is for the server's doing.
            state.closedBy = state.closedBy ?? SocketIOClientError.closedByClient
            return state.outbound
        }
        try? await outbound?.close(.normalClosure, reason: nil)
        await self.connection.withLock { $0 }?.value
    }

    private func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, connect: String) async throws {
        for try await message in inbound.messages(maxSize: 1 << 20) {
            guard case .text(let text) = message else { continue }
            switch try EnginePacket(text: text) {
            case .open:
                try await outbound.write(.text("4" + connect))
            case .ping:
                try await outbound.write(.text("3"))
            case .message(let body):
                try self.received(try SocketPacket(decoding: body), outbound: outbound)
            case .close:
                return
            default:
                break
            }
        }
    }

    private func received(_ packet: SocketPacket, outbound: WebSocketOutboundWriter) throws {
        switch packet.type {
        case .connect:
            let handshake = self.state.withLock { state in
                state.outbound = outbound
                defer { state.handshake = nil }
                return state.handshake
            }
            handshake?.resume()
        case .connectError:
            throw SocketIOClientError.refused(packet.data ?? "")
        case .event:
            let event = try SocketEvent(parsing: packet.data ?? "")
            self.onEvent(event.name, event.arguments)
        case .ack:
            guard let id = packet.ackID else { return }
            let arguments = try JSONValue(parsing: packet.data ?? "[]").arrayValue ?? []
            let waiting = self.state.withLock { state -> CheckedContinuation<[JSONValue], any Error>? in
                guard case .waiting(let continuation) = state.acks[id] else { return nil }
                if let continuation {
                    state.acks[id] = nil
                    return continuation
                }
                state.acks[id] = .arrived(arguments)
                return nil
            }
            waiting?.resume(returning: arguments)
        case .disconnect:
            throw SocketIOClientError.closedByServer
        }
    }

    /// Fails the handshake and every pending ack with `error`, once.
    private func finish(_ error: any Error) {
        let (handshake, waiting, wasOpen) = self.state.withLock { state in
            let wasOpen = state.outbound != nil && state.closedBy == nil
            state.closedBy = state.closedBy ?? error
            let handshake = state.handshake
            state.handshake = nil
            var waiting: [CheckedContinuation<[JSONValue], any Error>] = []
            for (_, slot) in state.acks {
                if case .waiting(let continuation?) = slot { waiting.append(continuation) }
            }
            state.acks.removeAll()
            return (handshake, waiting, wasOpen)
        }
        handshake?.resume(throwing: error)
        for continuation in waiting { continuation.resume(throwing: error) }
        if wasOpen { self.onClose(error) }
    }
}

/// Why a Socket.IO client stopped.
enum SocketIOClientError: Error, CustomStringConvertible {
    case refused(String)
    case closedByServer
    case notConnected
    case closedByClient

    var description: String {
        switch self {
        case .refused(let data): "the server refused the connection: \(data)"
        case .closedByServer: "the server closed the connection"
        case .notConnected: "not connected"
        case .closedByClient: "the client closed the connection"
        }
    }
}
