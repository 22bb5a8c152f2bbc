import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import Testing

@testable import SocketIOServer

/// The Engine.IO session state machine on its own: no network, no router.
@Suite struct EngineSessionTests {
    /// A session and the reasons its hooks heard.
    struct Fixture {
        let session: EngineSession
        /// The server's clock, which a test of the heartbeat runs with ``withClock(_:)``.
        let clock = SessionClock()
        let closes = EventLog<String>()
        let finishes = EventLog<Void>()

        init(transport: EngineSession.Transport = .polling, configuration: SocketIOConfiguration = TestServer.quiet) {
            self.session = EngineSession(
                sid: "test",
                transport: transport,
                handshake: SocketIOHandshake(headers: [:], query: [:], remoteAddress: nil),
                configuration: configuration,
                clock: self.clock,
                logger: .init(label: "EngineSessionTests")
            )
            let closes = self.closes
            let finishes = self.finishes
            self.session.start(hooks: .init(closed: { closes.append($0.rawValue) }, finished: { finishes.append(()) }))
        }

        /// Runs `body` while the clock runs the session's deadlines, as the server's `run()` does.
        func withClock(_ body: () async -> Void) async {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.clock.run() }
                await body()
                self.clock.finish()
            }
        }

        /// Returns once a consumer is suspended in the session (the state says so), yielding meanwhile.
        func parked(_ condition: (EngineSession.State) -> Bool) async {
            let deadline = ContinuousClock.now + .seconds(5)
            while !self.session.state.withLock({ condition($0) }) && ContinuousClock.now < deadline {
                await Task.yield()
            }
        }
    }

    static func packets(_ texts: String...) -> [ByteBuffer] {
        texts.map { ByteBuffer(string: $0) }
    }

    @Test func pollTakesEverythingQueuedInOneBatch() async {
        let fixture = Fixture()
        fixture.session.enqueue(ByteBuffer(string: "4a"))
        fixture.session.enqueue(ByteBuffer(string: "4b"))
        #expect(await fixture.session.poll() == .packets(Self.packets("4a", "4b")))
        #expect(fixture.session.queuedCount == 0)
    }

    @Test func onePollingResponseCarriesAtMostSixteenPackets() async {
        let fixture = Fixture()
        for index in 0..<20 {
            fixture.session.enqueue(ByteBuffer(string: "4\(index)"))
        }
        #expect(await fixture.session.poll() == .packets((0..<16).map { ByteBuffer(string: "4\($0)") }))
        #expect(await fixture.session.poll() == .packets((16..<20).map { ByteBuffer(string: "4\($0)") }))
    }

    @Test func pollWaitsForTheNextPacket() async {
        let fixture = Fixture()
        async let result = fixture.session.poll()
        // The GET is parked until a packet arrives; the enqueue hands the batch straight to it.
        await fixture.parked { $0.pollWaiter != nil }
        fixture.session.enqueue(ByteBuffer(string: "4late"))
        #expect(await result == .packets(Self.packets("4late")))
    }

    @Test func aSecondPendingPollIsAnOverlap() async {
        let fixture = Fixture()
        async let first = fixture.session.poll()
        await fixture.parked { $0.pollWaiter != nil }
        #expect(await fixture.session.poll() == .overlap)
        fixture.session.close(.transportError)
        #expect(await first == .closed)
    }

    @Test func overflowClosesTheSessionAndDropsTheQueue() async {
        let fixture = Fixture(configuration: SocketIOConfiguration(outboundQueueLimit: 4))
        for index in 0..<5 {
            fixture.session.enqueue(ByteBuffer(string: "4\(index)"))
        }
        #expect(!fixture.session.isOpen)
        #expect(fixture.closes.events == ["transport error"])
        #expect(fixture.finishes.events.count == 1)
        #expect(await fixture.session.poll() == .closed)
    }

    @Test func aPollDuringTheUpgradeIsAnsweredWithANoopAtOnce() async {
        let fixture = Fixture()
        #expect(fixture.session.beginUpgrade())
        #expect(await fixture.session.poll() == .packets([EngineText.noop]))
        fixture.session.abortUpgrade()
        fixture.session.enqueue(ByteBuffer(string: "4after"))
        #expect(await fixture.session.poll() == .packets(Self.packets("4after")))
    }

    @Test func aFlushingCloseOnPollingSendsWhatIsQueuedThenTheClosePacket() async {
        let fixture = Fixture()
        fixture.session.enqueue(ByteBuffer(string: "41"))
        fixture.session.close(.serverNamespaceDisconnect, flush: true)
        #expect(fixture.closes.events == ["server namespace disconnect"])
        #expect(fixture.finishes.events.isEmpty)
        #expect(await fixture.session.poll() == .packets(Self.packets("41", "1")))
        #expect(fixture.finishes.events.count == 1)
    }

    // The WebSocket side of the upgrade and of closing: EngineWebSocketHandlerTests.

    @Test func theHeartbeatPingsAndClosesWhenNoPongComes() async {
        let fixture = Fixture(configuration: SocketIOConfiguration(pingInterval: .milliseconds(50), pingTimeout: .milliseconds(50)))
        await fixture.withClock {
            #expect(await fixture.session.poll() == .packets([EngineText.ping]))
            #expect(await fixture.closes.wait(timeout: .seconds(2)) { $0 == ["ping timeout"] })
            #expect(!fixture.session.isOpen)
        }
    }

    @Test func pongsKeepTheSessionOpen() async {
        // The pong deadline is generous: a busy machine may take a while between the poll and the pong.
        let fixture = Fixture(configuration: SocketIOConfiguration(pingInterval: .milliseconds(50), pingTimeout: .seconds(2)))
        await fixture.withClock {
            for _ in 0..<5 {
                #expect(await fixture.session.poll() == .packets([EngineText.ping]))
                fixture.session.receivedPong()
            }
            #expect(fixture.session.isOpen)
            fixture.session.close(.transportClose)
        }
    }

    @Test func aSessionWithoutASocketClosesAfterTheConnectTimeout() async {
        let configuration = SocketIOConfiguration(pingInterval: .milliseconds(30), pingTimeout: .milliseconds(100), connectTimeout: .milliseconds(50))
        let fixture = Fixture(configuration: configuration)
        await fixture.withClock {
            while case .packets = await fixture.session.poll() {
                fixture.session.receivedPong()
            }
            #expect(fixture.closes.events == ["connect timeout"])
        }
    }
}
