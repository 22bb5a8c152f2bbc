import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
import SocketIOProtocol

extension SocketIOServer {
    /// Adds the Engine.IO endpoint at `path` (GET and POST): long-polling, and the WebSocket upgrade on the same GET route.
    ///
    /// The application must serve WebSocket upgrades through the same router with ``SocketIOHTTP1Channel``, e.g.
    /// `server: .http1SocketIO(webSocketRouter: router, configuration: .init(maxFrameSize: configuration.maxPayload))`.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>, path: String = "/socket.io") {
        router.get(RouterPath(path)) { request, context -> Response in
            await self.respondToGet(request, context: context)
        }
        router.post(RouterPath(path)) { request, context -> Response in
            await self.respondToPost(request, context: context)
        }
    }

    /// A GET: opens a polling session, serves a long-poll, or grants a WebSocket upgrade to ``SocketIOHTTP1Channel``.
    func respondToGet(_ request: Request, context: some RequestContext) async -> Response {
        let query = Self.query(of: request)
        guard query["EIO"] == "4" else { return EngineError.unsupportedProtocolVersion.response }
        switch query["transport"] {
        case "polling":
            guard let sid = query["sid"] else {
                let handshake = Self.handshake(of: request, remoteAddress: Self.remoteAddress(of: context))
                switch self.openSession(transport: .polling, handshake: handshake) {
                case .success(let connection): return Self.pollingResponse(connection.session.openPacket(transport: .polling))
                case .failure(let refusal): return refusal.response
                }
            }
            return await self.longPoll(sid: sid)
        case "websocket":
            // A plain GET cannot become a WebSocket; only the upgrade request (handled before the router's HTTP path) can.
            guard request.headers[.upgrade]?.lowercased() == "websocket" else { return EngineError.badRequest.response }
            if let sid = query["sid"] {
                guard let connection = self.registry.connection(sid: sid) else { return EngineError.unknownSessionID.response }
                guard connection.session.transport == .polling else { return EngineError.badRequest.response }
            } else if let refusal = self.limits.check(SessionLimits.key(of: Self.remoteAddress(of: context))) {
                // Refused before the upgrade, with a status the client can read; the session is counted after it.
                return refusal.response
            }
            // Only the upgrade request that ``SocketIOHTTP1Channel`` answers through the router carries a slot.
            guard let slot = SocketIOUpgradeSlot.current else { return EngineError.badRequest.response }
            let handshake = Self.handshake(of: request, remoteAddress: Self.remoteAddress(of: context))
            slot.grant(SocketIOUpgradeTicket(server: self, handshake: handshake))
            return Response(status: .ok)
        default:
            return EngineError.unknownTransport.response
        }
    }

    /// Answers a long-poll GET with everything queued, waiting for the first packet if need be.
    private func longPoll(sid: String) async -> Response {
        guard let connection = self.registry.connection(sid: sid) else { return EngineError.unknownSessionID.response }
        switch await connection.session.poll() {
        case .packets(let batch):
            connection.logger.trace("long-poll answered", metadata: ["sio.packets": "\(batch.count)"])
            return Self.pollingResponse(Self.joined(batch))
        case .overlap:
            connection.logger.notice("closing session: a second long-poll GET while one is pending")
            connection.session.close(.transportError)
            return EngineError.badRequest.response
        case .notPolling:
            return EngineError.badRequest.response
        case .closed:
            return Self.pollingResponse(EngineText.close)
        }
    }

    /// A POST: the client's packets, `\u{1E}`-separated, handled in order before the answer `ok`.
    func respondToPost(_ request: Request, context: some RequestContext) async -> Response {
        let query = Self.query(of: request)
        guard query["EIO"] == "4" else { return EngineError.unsupportedProtocolVersion.response }
        guard query["transport"] == "polling" else { return EngineError.unknownTransport.response }
        guard let sid = query["sid"] else { return EngineError.badHandshakeMethod.response }
        guard let connection = self.registry.connection(sid: sid) else { return EngineError.unknownSessionID.response }
        guard connection.session.transport == .polling else { return EngineError.badRequest.response }
        let limit = self.configuration.maxPayload
        let body: ByteBuffer
        do {
            // A declared length over the limit is refused before a byte of the body is read.
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
                throw NIOTooManyBytesError(maxBytes: limit)
            }
            body = try await request.body.collect(upTo: limit)
        } catch {
            connection.logger.notice("closing session: polling body over maxPayload", metadata: ["sio.maxPayload": "\(limit)"])
            connection.session.close(.transportError)
            return Response(status: .contentTooLarge)
        }
        let packets: [EnginePacket]
        do {
            packets = try EnginePayload.decode(utf8: Array(body.readableBytesView))
        } catch {
            connection.logger.notice("closing session: malformed polling body", metadata: ["sio.error": "\(error)"])
            connection.session.close(.parseError)
            return EngineError.badRequest.response
        }
        for packet in packets {
            await connection.receive(packet)
        }
        return Self.pollingResponse(ByteBuffer(string: "ok"))
    }

    // MARK: Helpers

    /// A 200 with a polling body.
    static func pollingResponse(_ body: ByteBuffer) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=UTF-8"], body: ResponseBody(byteBuffer: body))
    }

    /// Packets joined by the record separator, copied once into one buffer.
    static func joined(_ packets: [ByteBuffer]) -> ByteBuffer {
        if packets.count == 1 { return packets[0] }
        var body = ByteBuffer()
        body.reserveCapacity(packets.reduce(packets.count) { $0 + $1.readableBytes })
        for (index, packet) in packets.enumerated() {
            if index > 0 { body.writeInteger(EnginePayload.separator) }
            body.writeImmutableBuffer(packet)
        }
        return body
    }

    /// The query parameters, percent-decoded; the first of a repeated name wins.
    static func query(of request: Request) -> [String: String] {
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where query[String(key)] == nil {
            query[String(key)] = String(value)
        }
        return query
    }

    /// The headers a session keeps from its first request: a session costs what it keeps, and anyone can open one.
    static let keptHeaders: [HTTPField.Name] = [.authorization, .userAgent]

    /// What the handler learns of a session's first request: the query, the address, and only the ``keptHeaders``.
    static func handshake(of request: Request, remoteAddress: String?) -> SocketIOHandshake {
        var headers = HTTPFields()
        for name in Self.keptHeaders {
            if let value = request.headers[name] { headers[name] = value }
        }
        return SocketIOHandshake(headers: headers, query: Self.query(of: request), remoteAddress: remoteAddress)
    }

    /// The client's IP address: the one the application's context names (behind a proxy, the forwarded one), else the
    /// peer's when the context records it.
    static func remoteAddress(of context: Any) -> String? {
        if let context = context as? any SocketIOClientAddressContext { return context.socketIOClientAddress }
        return (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress
    }
}
