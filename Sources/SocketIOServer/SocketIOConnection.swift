import Logging
import SocketIOProtocol
import Synchronization

/// The Socket.IO side of one Engine.IO session: namespace "/" only, one socket at a time.
///
/// Handler calls are counted while they run, so `disconnected` is delivered only after the `connected` or `received`
/// call in flight returns: the application never sees a socket leave before it has arrived.
final class SocketIOConnection: Sendable {
    enum SocketState: Sendable {
        /// No CONNECT yet, or the client left with `41`.
        case none
        /// `authenticate` is running.
        case authenticating
        /// Admitted.
        case connected(SocketIOSocket)
        /// The session is over.
        case closed
    }

    struct State: Sendable {
        var socket: SocketState = .none
        /// Handler calls in flight.
        var busy = 0
        /// A disconnect that waits for the busy calls to return.
        var pendingDisconnect: (socket: SocketIOSocket, reason: DisconnectReason)?
    }

    let session: EngineSession
    let handler: any SocketIOHandler
    /// Where sockets are found by user.
    private let registry: SocketRegistry
    /// The session's place among unauthenticated ones, given back when its first socket is admitted.
    private let pending: PendingSession
    /// The server's: where `disconnected` calls run when they cannot run in the task that ended the socket.
    private let tasks: BackgroundTasks
    private let state = Mutex(State())

    init(session: EngineSession, handler: any SocketIOHandler, registry: SocketRegistry, pending: PendingSession, tasks: BackgroundTasks) {
        self.session = session
        self.handler = handler
        self.registry = registry
        self.pending = pending
        self.tasks = tasks
    }

    var logger: Logger { self.session.logger }

    /// The connected socket, if any.
    var socket: SocketIOSocket? {
        self.state.withLock { state in
            if case .connected(let socket) = state.socket { return socket }
            return nil
        }
    }

    // MARK: Engine.IO packets

    /// Handles one packet from the client, whichever transport carried it (probe and upgrade packets are the WebSocket's).
    func receive(_ packet: EnginePacket) async {
        self.logger.trace("packet from the client", metadata: ["sio.packet": "\(packet)"])
        switch packet {
        case .pong:
            self.session.receivedPong()
        case .message(let text):
            await self.receiveSocketPacket(text)
        case .close:
            self.session.close(.transportClose)
        case .noop:
            break
        case .binaryMessage:
            self.logger.notice("closing session: binary messages are not supported")
            self.session.close(.parseError)
        case .open, .ping, .upgrade:
            // Engine.IO 4 clients never send these outside an upgrade: the server pings, the client answers.
            self.logger.notice("closing session: unexpected Engine.IO packet", metadata: ["sio.packet": "\(packet.type)"])
            self.session.close(.parseError)
        }
    }

    /// Handles a packet whose handling is synchronous (pong, noop, close), on the WebSocket's event loop.
    func receiveInline(_ packet: EnginePacket) {
        self.logger.trace("packet from the client", metadata: ["sio.packet": "\(packet)"])
        switch packet {
        case .pong: self.session.receivedPong()
        case .close: self.session.close(.transportClose)
        default: break
        }
    }

    // MARK: Socket.IO packets

    private func receiveSocketPacket(_ text: String) async {
        let packet: SocketPacket
        do {
            packet = try SocketPacket(decoding: text)
        } catch .binaryPacketsNotSupported {
            self.logger.notice("closing session: binary Socket.IO packets (BINARY_EVENT, BINARY_ACK) are not supported")
            self.session.close(.parseError)
            return
        } catch {
            self.logger.notice("closing session: malformed Socket.IO packet", metadata: ["sio.error": "\(error)"])
            self.session.close(.parseError)
            return
        }
        switch packet.type {
        case .connect:
            await self.connect(packet)
        case .disconnect:
            self.clientDisconnected(namespace: packet.namespace)
        case .event:
            await self.event(packet)
        case .ack:
            // The server never asks clients for acknowledgements, so there is nothing to match.
            self.logger.debug("ignoring an ACK from the client")
        case .connectError:
            self.logger.notice("closing session: CONNECT_ERROR is a server packet")
            self.session.close(.parseError)
        }
    }

    private func connect(_ packet: SocketPacket) async {
        guard packet.namespace == SocketPacket.mainNamespace else {
            self.session.enqueue(EngineText.message(.connectRefused(message: "Invalid namespace", namespace: packet.namespace)))
            return
        }
        let proceed = self.state.withLock { state -> Bool in
            guard case .none = state.socket else { return false }
            state.socket = .authenticating
            state.busy += 1
            return true
        }
        guard proceed else {
            self.logger.debug("ignoring a CONNECT to a namespace already joined")
            return
        }
        // Before authentication a client is anyone: its CONNECT data is kept small, and a refused CONNECT ends the session
        // (a client that could retry without end on one session would cost a verification each time for nothing).
        let admission: SocketIOAdmission?
        if let data = packet.data, data.utf8.count > self.session.configuration.maxConnectDataBytes {
            self.logger.notice("refusing a CONNECT: its data is too large", metadata: ["sio.bytes": "\(data.utf8.count)"])
            admission = nil
        } else {
            let auth = packet.data.flatMap { try? JSONValue(parsing: $0) }
            // Both transports call this from a task that ends with the request or the burst of packets (a WebSocket has
            // no task of its own), so what verifying a token and the welcome's queries need is given back then.
            admission = await self.handler.authenticate(auth: auth, handshake: self.session.handshake)
        }
        guard let admission else {
            self.state.withLock { state in
                if case .authenticating = state.socket { state.socket = .none }
            }
            self.session.enqueue(EngineText.message(.connectRefused(message: "unauthorized")))
            self.session.close(.serverNamespaceDisconnect, flush: true)
            await self.endBusy()
            return
        }
        let userID = admission.userID
        let socket = SocketIOSocket(id: RandomID.make(), admission: admission, connection: self)
        let admitted = self.state.withLock { state -> Bool in
            guard case .authenticating = state.socket else { return false }
            state.socket = .connected(socket)
            return true
        }
        if admitted {
            self.pending.settle()
            self.session.setAttached(true)
            // One step under the registry's lock: no emit can overtake the reply, and none can miss the socket once the
            // client has read the reply (queuing first and registering after left a window in which it could).
            self.registry.admit(socket, reply: EngineText.message(.connectAccepted(sid: socket.id)))
            self.logger.debug("socket connected", metadata: ["sio.socket": .string(socket.id), "sio.user": .string(userID)])
            await self.handler.connected(socket)
        }
        await self.endBusy()
    }

    private func event(_ packet: SocketPacket) async {
        guard packet.namespace == SocketPacket.mainNamespace, let socket = self.beginBusy() else {
            self.logger.debug("ignoring an EVENT outside a connected namespace")
            return
        }
        let event: SocketEvent
        do {
            event = try SocketEvent(parsing: packet.data ?? "")
        } catch {
            self.logger.notice("closing session: malformed EVENT", metadata: ["sio.error": "\(error)"])
            self.session.close(.parseError)
            await self.endBusy()
            return
        }
        let ack = packet.ackID.map { SocketIOAck(id: $0, session: self.session) }
        await self.handler.received(event: event.name, arguments: event.arguments, from: socket, ack: ack)
        await self.endBusy()
    }

    /// `41` from the client: the socket leaves; the session stays until the client closes it (or `connectTimeout`).
    private func clientDisconnected(namespace: String) {
        guard namespace == SocketPacket.mainNamespace else { return }
        self.socketEnded(.clientNamespaceDisconnect, next: .none)
    }

    /// The server's `socket.disconnect()`: DISCONNECT, then the session closes after what is already queued.
    func disconnectFromServer() {
        self.session.enqueue(EngineText.message(.disconnect()))
        self.session.close(.serverNamespaceDisconnect, flush: true)
    }

    /// The Engine.IO session stopped taking packets (the session's `closed` hook).
    func sessionClosed(_ reason: DisconnectReason) {
        self.socketEnded(reason, next: .closed)
    }

    // MARK: Ordering handler calls

    /// Moves the socket out of `connected`: it leaves the registry now, and hears `disconnected` now or when the busy
    /// calls return.
    private func socketEnded(_ reason: DisconnectReason, next: SocketState) {
        let ended = self.state.withLock { state -> (socket: SocketIOSocket, deliverNow: Bool)? in
            let current = state.socket
            if case .closed = current { return nil }
            state.socket = next
            guard case .connected(let socket) = current else { return nil }
            guard state.busy == 0 else {
                state.pendingDisconnect = (socket, reason)
                return (socket, false)
            }
            return (socket, true)
        }
        guard let ended else { return }
        ended.socket.markDisconnected()
        self.registry.remove(ended.socket)
        self.session.setAttached(false)
        self.logger.debug("socket disconnected", metadata: ["sio.socket": .string(ended.socket.id), "sio.reason": .string(reason.rawValue)])
        guard ended.deliverNow else { return }
        let handler = self.handler
        // In the server's task group: a close can happen inside any task (another user's emit that overflows this
        // queue, a heartbeat), and the handler must not run in that task, with its task-locals.
        self.tasks.add { await handler.disconnected(ended.socket, reason: reason.rawValue) }
    }

    /// Counts a handler call for the connected socket; nil when no socket is connected.
    private func beginBusy() -> SocketIOSocket? {
        self.state.withLock { state -> SocketIOSocket? in
            guard case .connected(let socket) = state.socket else { return nil }
            state.busy += 1
            return socket
        }
    }

    /// Ends a handler call and delivers a disconnect that waited for it.
    private func endBusy() async {
        let pending = self.state.withLock { state -> (socket: SocketIOSocket, reason: DisconnectReason)? in
            state.busy -= 1
            guard state.busy == 0 else { return nil }
            defer { state.pendingDisconnect = nil }
            return state.pendingDisconnect
        }
        guard let pending else { return }
        await self.handler.disconnected(pending.socket, reason: pending.reason.rawValue)
    }
}
