import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SocketIOProtocol
import Synchronization
import Testing

@testable import SocketIOServer

/// The WebSocket transport's handler in a channel of its own: frames in, frames out, the session beside it.
@Suite struct EngineWebSocketHandlerTests {
    /// A WebSocket on a testing channel, for a server whose background tasks run while the test does.
    struct Harness {
        let server: TestServer
        let channel: NIOAsyncTestingChannel

        /// A WebSocket that opens a session (`query` without `sid`) or probes the polling session `sid`.
        init(_ server: TestServer, query: [String: String] = [:]) async throws {
            self.server = server
            self.channel = NIOAsyncTestingChannel()
            try await self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).get()
            let ticket = SocketIOUpgradeTicket(server: server.server, handshake: SocketIOHandshake(headers: [:], query: query, remoteAddress: nil))
            try await self.channel.pipeline.addHandlers([WebSocketFrameEncoder(), EngineWebSocketHandler(ticket: ticket)]).get()
        }

        func send(_ text: String, fin: Bool = true, opcode: WebSocketOpcode = .text) async throws {
            try await self.send(ByteBuffer(string: text), fin: fin, opcode: opcode)
        }

        func send(_ data: ByteBuffer, fin: Bool = true, opcode: WebSocketOpcode = .text) async throws {
            try await self.channel.writeInbound(WebSocketFrame(fin: fin, opcode: opcode, data: data))
        }

        /// Everything written so far, after the loop ran what was posted to it, read back from the bytes on the wire:
        /// text frames as their text, others as `close <code>`, `pong <payload>`.
        func sent() async throws -> [String] {
            await self.channel.testingEventLoop.run()
            var bytes = ByteBuffer()
            while var buffer = try await self.channel.readOutbound(as: ByteBuffer.self) {
                bytes.writeBuffer(&buffer)
            }
            var frames: [String] = []
            while let first = bytes.readInteger(as: UInt8.self), let second = bytes.readInteger(as: UInt8.self) {
                // A server's frames are final and unmasked.
                #expect(first & 0xF0 == 0x80 && second & 0x80 == 0)
                var length = Int(second & 0x7F)
                if length == 126 { length = Int(bytes.readInteger(as: UInt16.self)!) }
                if length == 127 { length = Int(bytes.readInteger(as: UInt64.self)!) }
                var data = bytes.readSlice(length: length)!
                switch WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F) {
                case .text: frames.append(String(buffer: data))
                case .connectionClose: frames.append("close \(data.readWebSocketErrorCode().map { "\($0)" } ?? "none")")
                case .pong: frames.append("pong \(String(buffer: data))")
                case let opcode: frames.append("\(String(describing: opcode))")
                }
            }
            return frames
        }

        /// The session this WebSocket opened (the only one on the server).
        var connection: SocketIOConnection? { self.server.server.registry.allConnections.first }

        /// A WebSocket that opened a session, with its open packet read, and that session.
        static func opened(_ server: TestServer) async throws -> (Harness, EngineSession) {
            let socket = try await Harness(server)
            _ = try await socket.sent()
            return (socket, try #require(socket.connection?.session))
        }
    }

    static func withServer(_ configuration: SocketIOConfiguration = TestServer.quiet, _ body: (TestServer) async throws -> Void) async throws {
        let server = TestServer(configuration: configuration)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await server.server.clock.run() }
            group.addTask { await server.server.tasks.run() }
            defer {
                server.server.shutdown()
                server.server.clock.finish()
                server.server.tasks.finish()
            }
            try await body(server)
        }
    }

    static let open = #"0{"sid":"#

    @Test func aNewWebSocketGetsTheOpenPacketAndEmitsInOrderWithOneFlushPerBurst() async throws {
        try await Self.withServer { server in
            let socket = try await Harness(server)
            let opened = try await socket.sent()
            #expect(opened.count == 1 && opened[0].hasPrefix(Self.open) && opened[0].contains(#""upgrades":[]"#))
            let session = try #require(socket.connection?.session)
            for index in 0..<5 {
                session.enqueue(ByteBuffer(string: "42[\"n\",\(index)]"))
            }
            #expect(try await socket.sent() == (0..<5).map { "42[\"n\",\($0)]" })
            // Events are framed once for every recipient, whatever their size (7-, 16- and 64-bit lengths).
            for size in [10, 200, 70_000] {
                session.enqueue(EncodedEvent(name: "e", encodedArguments: ["\"" + String(repeating: "x", count: size) + "\""]))
            }
            #expect(try await socket.sent() == [10, 200, 70_000].map { "42[\"e\",\"" + String(repeating: "x", count: $0) + "\"]" })
            #expect(session.transport == .webSocket)
        }
    }

    @Test func theUpgradeEndsThePendingPollAndHandsTheQueueToTheWebSocketInOrder() async throws {
        try await Self.withServer { server in
            let connection = try server.server.openSession(
                transport: .polling,
                handshake: SocketIOHandshake(headers: [:], query: [:], remoteAddress: nil)
            ).get()
            let session = connection.session
            let socket = try await Harness(server, query: ["sid": session.sid])
            async let pending = session.poll()
            let deadline = ContinuousClock.now + .seconds(5)
            while session.state.withLock({ $0.pollWaiter == nil }) && ContinuousClock.now < deadline { await Task.yield() }
            try await socket.send("2probe")
            #expect(try await socket.sent() == ["3probe"])
            #expect(await pending == .packets([EngineText.noop]))
            // Queued between the probe and `5`: they belong to the WebSocket once it takes over.
            session.enqueue(ByteBuffer(string: "4one"))
            session.enqueue(ByteBuffer(string: "4two"))
            try await socket.send("5")
            session.enqueue(ByteBuffer(string: "4three"))
            #expect(try await socket.sent() == ["4one", "4two", "4three"])
            #expect(session.transport == .webSocket)
            #expect(await session.poll() == .notPolling)
        }
    }

    @Test func aProbeThatDoesNotStartWith2probeLeavesThePollingSessionAsItWas() async throws {
        try await Self.withServer { server in
            let connection = try server.server.openSession(
                transport: .polling,
                handshake: SocketIOHandshake(headers: [:], query: [:], remoteAddress: nil)
            ).get()
            let socket = try await Harness(server, query: ["sid": connection.session.sid])
            // A second WebSocket on the same sid is refused while the first probes.
            let second = try await Harness(server, query: ["sid": connection.session.sid])
            #expect(try await second.sent() == ["close normalClosure"])
            try await socket.send("hello")
            #expect(try await socket.sent() == ["close normalClosure"])
            #expect(connection.session.isOpen)
            #expect(connection.session.transport == .polling)
            #expect(connection.session.claimUpgrade())
        }
    }

    @Test func aFlushingCloseSendsWhatIsQueuedThenClose1000AndFinishes() async throws {
        try await Self.withServer { server in
            let (socket, session) = try await Harness.opened(server)
            session.enqueue(ByteBuffer(string: "41"))
            session.close(.serverNamespaceDisconnect, flush: true)
            #expect(try await socket.sent() == ["41", "close normalClosure"])
            #expect(session.state.withLock { $0.phase } == .finished)
            #expect(server.server.sessionCount == 0)
        }
    }

    @Test func aForcedCloseDropsTheBacklogAndCloses() async throws {
        try await Self.withServer { server in
            let (socket, session) = try await Harness.opened(server)
            socket.channel.isWritable = false
            session.enqueue(ByteBuffer(string: "4held"))
            session.close(.transportClose)
            #expect(try await socket.sent() == ["close normalClosure"])
            #expect(server.server.sessionCount == 0)
        }
    }

    @Test func anUndeliveredFlushFinishesAtTheDrainDeadline() async throws {
        let configuration = SocketIOConfiguration(pingInterval: .seconds(60), pingTimeout: .milliseconds(100), outboundQueueLimit: 8)
        try await Self.withServer(configuration) { server in
            let (socket, session) = try await Harness.opened(server)
            socket.channel.isWritable = false
            session.enqueue(ByteBuffer(string: "41"))
            session.close(.serverNamespaceDisconnect, flush: true)
            #expect(try await socket.sent().isEmpty)
            let deadline = ContinuousClock.now + .seconds(5)
            while session.state.withLock({ $0.phase }) != .finished && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(session.state.withLock { $0.phase } == .finished)
            #expect(try await socket.sent() == ["close normalClosure"])
        }
    }

    @Test func aDrainingSessionWhoseWebSocketGoesAwayFinishesAtOnce() async throws {
        // quiet: pingTimeout, the drain deadline, is 5 s.
        try await Self.withServer { server in
            let (socket, session) = try await Harness.opened(server)
            socket.channel.isWritable = false
            session.enqueue(ByteBuffer(string: "41"))
            session.close(.serverNamespaceDisconnect, flush: true)
            #expect(try await socket.sent().isEmpty)
            #expect(session.state.withLock { $0.phase } == .draining)
            try await socket.channel.close().get()
            await socket.channel.testingEventLoop.run()
            #expect(session.state.withLock { $0.phase } == .finished)
            #expect(server.server.sessionCount == 0)
        }
    }

    @Test func aSocketThatDoesNotReadKeepsItsBacklogThenOverflowsAsTheQueueDid() async throws {
        let configuration = SocketIOConfiguration(pingInterval: .seconds(60), outboundQueueLimit: 8)
        try await Self.withServer(configuration) { server in
            let (socket, session) = try await Harness.opened(server)
            socket.channel.isWritable = false
            for index in 0..<8 {
                session.enqueue(ByteBuffer(string: "4\(index)"))
            }
            #expect(try await socket.sent().isEmpty)
            #expect(session.isOpen)
            // Writable again: the backlog goes out in order, flushed.
            socket.channel.isWritable = true
            socket.channel.pipeline.fireChannelWritabilityChanged()
            #expect(try await socket.sent() == (0..<8).map { "4\($0)" })
            socket.channel.isWritable = false
            for index in 0..<9 {
                session.enqueue(ByteBuffer(string: "4\(index)"))
            }
            _ = try await socket.sent()
            #expect(!session.isOpen)
            #expect(server.server.sessionCount == 0)
            #expect(!socket.channel.isActive)
        }
    }

    @Test func pingsAreAnsweredAndPongsIgnored() async throws {
        try await Self.withServer { server in
            let socket = try await Harness(server)
            _ = try await socket.sent()
            try await socket.send("hi", opcode: .ping)
            try await socket.send("x", opcode: .pong)
            #expect(try await socket.sent() == ["pong hi"])
            #expect(socket.connection?.session.isOpen == true)
        }
    }

    @Test func textThatIsNotUTF8Closes1007() async throws {
        try await Self.withServer { server in
            let (socket, session) = try await Harness.opened(server)
            try await socket.send(ByteBuffer(bytes: [0x34, 0xFF, 0xFE]))
            #expect(try await socket.sent() == ["close dataInconsistentWithMessage"])
            #expect(!session.isOpen)
        }
    }

    @Test func fragmentsAddingUpToMoreThanMaxPayloadClose1009() async throws {
        let configuration = SocketIOConfiguration(pingInterval: .seconds(60), maxPayload: 100)
        try await Self.withServer(configuration) { server in
            let (socket, session) = try await Harness.opened(server)
            try await socket.send(String(repeating: "a", count: 60), fin: false)
            try await socket.send(String(repeating: "a", count: 60), fin: false, opcode: .continuation)
            #expect(try await socket.sent() == ["close messageTooLarge"])
            #expect(!session.isOpen)
        }
    }

    @Test func fragmentsWithinMaxPayloadMakeOneMessage() async throws {
        try await Self.withServer { server in
            let (socket, session) = try await Harness.opened(server)
            // A noop in three fragments, with a ping between them.
            try await socket.send("", fin: false)
            try await socket.send("p", opcode: .ping)
            try await socket.send("6", fin: false, opcode: .continuation)
            try await socket.send("", opcode: .continuation)
            #expect(try await socket.sent() == ["pong p"])
            #expect(session.isOpen)
            // A continuation without a start is a protocol error.
            try await socket.send("6", opcode: .continuation)
            #expect(try await socket.sent() == ["close protocolError"])
            #expect(!session.isOpen)
        }
    }

    @Test func theClientsCloseIsAnsweredAndClosesTheSession() async throws {
        try await Self.withServer { server in
            let (socket, session) = try await Harness.opened(server)
            var code = ByteBuffer()
            code.write(webSocketErrorCode: .goingAway)
            try await socket.send(code, opcode: .connectionClose)
            #expect(try await socket.sent() == ["close normalClosure"])
            #expect(!session.isOpen)
            #expect(!socket.channel.isActive)
        }
    }

    @Test func theClientsPacketsBeforeItsCloseAreHandledFirst() async throws {
        try await Self.withServer { server in
            let socket = try await Harness(server)
            _ = try await socket.sent()
            try await socket.send(#"40{"token":"good"}"#)
            #expect(await server.handler.calls.wait { $0.connectedCount == 1 })
            // Events, `41`, then the close frame at once: every event is handled, and the socket leaves with `41`'s
            // reason, not the transport's.
            var code = ByteBuffer()
            code.write(webSocketErrorCode: .normalClosure)
            let frames =
                (0..<200).map { WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: #"42["note",\#($0)]"#)) }
                + [
                    WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "41")),
                    WebSocketFrame(fin: true, opcode: .connectionClose, data: code),
                ]
            // All read in one go, as from one TCP segment: the packet task is far behind when the close frame comes.
            let pipeline = socket.channel.pipeline
            try await socket.channel.testingEventLoop.executeInContext {
                for frame in frames {
                    pipeline.syncOperations.fireChannelRead(NIOAny(frame))
                }
                pipeline.syncOperations.fireChannelReadComplete()
            }
            #expect(await server.handler.calls.wait { !$0.disconnectReasons.isEmpty })
            #expect(server.handler.calls.events.disconnectReasons == ["client namespace disconnect"])
            #expect(server.handler.calls.events.count { if case .received = $0 { true } else { false } } == 200)
            #expect(await server.handler.calls.wait(timeout: .seconds(5)) { _ in server.server.sessionCount == 0 })
        }
    }

    @Test func aFinishedSessionAndItsWebSocketAreReleased() async throws {
        weak var released: EngineSession?
        weak var handler: EngineWebSocketHandler?
        try await Self.withServer { server in
            do {
                let socket = try await Harness(server)
                _ = try await socket.sent()
                released = socket.connection?.session
                handler = try await socket.channel.pipeline.handler(type: EngineWebSocketHandler.self).get()
                #expect(released != nil && handler != nil)
                released?.close(.transportClose)
                _ = try await socket.sent()
                try await socket.channel.close().get()
                await socket.channel.testingEventLoop.run()
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while (released != nil || handler != nil) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(released == nil)
            #expect(handler == nil)
        }
    }
}
