import HummingbirdWebSocket
import Logging
import NIOCore
import SocketIOProtocol

extension SocketIOServer {
    /// How one child task of a WebSocket connection ended.
    enum WebSocketEnd: Sendable {
        /// The client stopped sending; `owner` says whether this WebSocket carries the session (it completed the upgrade).
        case reader(owner: Bool, reason: DisconnectReason)
        /// The session has nothing more to send, or the connection refused a write.
        case writer
        /// The session finished (a forced close, or the drain deadline passed).
        case finished
        /// The upgrade deadline passed; `upgraded` says whether the upgrade had completed by then.
        case upgradeDeadline(upgraded: Bool)
    }

    /// Serves one WebSocket: a new session (`transport=websocket`), or the upgrade of a polling session (`&sid=`).
    func serveWebSocket(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, handshake: SocketIOHandshake) async {
        if let sid = handshake.query["sid"] {
            // The session may have ended between the upgrade request and now, or another WebSocket may probe it already.
            guard let connection = self.registry.connection(sid: sid), connection.session.claimUpgrade() else { return }
            await self.run(connection, inbound: inbound, outbound: outbound, probing: true)
            return
        }
        guard case .success(let connection) = self.openSession(transport: .webSocket, handshake: handshake) else {
            // Refused between the check before the upgrade and now: the WebSocket closes without a session.
            return
        }
        do {
            try await Self.write(connection.session.openPacket(transport: .webSocket), to: outbound)
        } catch {
            connection.session.close(.transportClose)
            return
        }
        await self.run(connection, inbound: inbound, outbound: outbound, probing: false)
    }

    /// Runs a reader and a writer for the connection until either ends or the session finishes, then settles the session:
    /// closed when this WebSocket carried it, left polling when an upgrade did not complete.
    private func run(_ connection: SocketIOConnection, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, probing: Bool) async {
        let session = connection.session
        let upgradeTimeout = self.configuration.upgradeTimeout
        var owner = !probing
        var reason = DisconnectReason.transportClose
        await withTaskGroup(of: WebSocketEnd.self) { group in
            group.addTask { await self.read(inbound, outbound: outbound, connection: connection, probing: probing) }
            // The writer waits in the queue until the session is on WebSocket, so during an upgrade it sends nothing.
            group.addTask { await Self.drain(session, to: outbound) }
            // A write stuck on a client that does not read is interrupted only by cancellation.
            group.addTask {
                await session.waitUntilFinished()
                return .finished
            }
            if probing {
                group.addTask {
                    try? await Task.sleep(for: upgradeTimeout)
                    return .upgradeDeadline(upgraded: session.transport == .webSocket)
                }
            }
            var stopping = false
            while let end = await group.next() {
                var stop = true
                switch end {
                case .reader(let isOwner, let readerReason):
                    owner = isOwner
                    reason = readerReason
                case .writer, .finished:
                    break
                case .upgradeDeadline(let upgraded):
                    stop = !upgraded
                }
                if stop && !stopping {
                    stopping = true
                    group.cancelAll()
                }
            }
        }
        if owner {
            session.close(reason)
        } else {
            session.abortUpgrade()
        }
    }

    /// Reads Engine.IO packets until the client closes; on an upgrade, first answers the probe and waits for `5`.
    private func read(
        _ inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter,
        connection: SocketIOConnection,
        probing: Bool
    ) async -> WebSocketEnd {
        // Messages are read whole up to maxPayload; a single larger frame never gets here (the frame decoder refuses it).
        var messages = inbound.messages(maxSize: self.configuration.maxPayload).makeAsyncIterator()
        var owner = !probing
        do {
            if probing {
                guard try await Self.upgrade(connection.session, messages: &messages, outbound: outbound) else {
                    return .reader(owner: false, reason: .transportClose)
                }
                owner = true
            }
            while let message = try await messages.next() {
                guard case .text(let text) = message else {
                    connection.logger.notice("closing session: binary WebSocket frames are not supported")
                    connection.session.close(.parseError)
                    return .reader(owner: owner, reason: .parseError)
                }
                let packet: EnginePacket
                do {
                    packet = try EnginePacket(text: text)
                } catch {
                    connection.logger.notice("closing session: malformed Engine.IO packet", metadata: ["sio.error": "\(error)"])
                    connection.session.close(.parseError)
                    return .reader(owner: owner, reason: .parseError)
                }
                await connection.receive(packet)
            }
            return .reader(owner: owner, reason: .transportClose)
        } catch {
            return .reader(owner: owner, reason: .transportError)
        }
    }

    /// The upgrade of a polling session: `2probe` → `3probe`, the pending GET ends with a noop, then `5` switches transports.
    private static func upgrade(
        _ session: EngineSession,
        messages: inout WebSocketInboundMessageStream.AsyncIterator,
        outbound: WebSocketOutboundWriter
    ) async throws -> Bool {
        guard case .text("2probe")? = try await messages.next() else {
            session.logger.debug("upgrade refused: the WebSocket did not start with 2probe")
            return false
        }
        guard session.beginUpgrade() else { return false }
        try await Self.write(EngineText.packet(.pong(payload: "probe")), to: outbound)
        guard case .text("5")? = try await messages.next() else {
            session.logger.debug("upgrade abandoned: expected 5 after the probe")
            return false
        }
        guard session.completeUpgrade() else { return false }
        session.logger.debug("session upgraded to WebSocket")
        return true
    }

    /// Writes the session's queue, batch by batch, until the session is finished or the connection fails.
    private static func drain(_ session: EngineSession, to outbound: WebSocketOutboundWriter) async -> WebSocketEnd {
        while let batch = await session.nextWebSocketBatch() {
            for packet in batch {
                do {
                    try await Self.write(packet, to: outbound)
                } catch {
                    return .writer
                }
            }
        }
        return .writer
    }

    /// Writes one packet as one text frame, from the buffer as it is (`.text(String)` would copy it for every socket).
    static func write(_ packet: ByteBuffer, to outbound: WebSocketOutboundWriter) async throws {
        try await outbound.withTextMessageWriter { write in
            try await write(packet)
        }
    }
}
