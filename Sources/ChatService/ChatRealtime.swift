import HTTPTypes
public import Logging
public import ParleyCore
import ParleyStore
public import ServiceLifecycle
public import SocketIOProtocol
public import SocketIOServer

/// The timings of the realtime side, and the clock they are measured on.
public struct RealtimeSettings: Sendable {
    /// How long a user's last socket may be gone before contacts hear `userOffline` (a reload is not going offline).
    public var presenceGrace: Duration
    /// How long `typing` lasts without a renewal.
    public var typingTimeout: Duration
    /// The clock of the grace periods and typing expiries (tests advance one by hand).
    public var clock: any Clock<Duration>
    /// How long after its token's expiry a socket that has not renewed is closed (room for clocks that disagree).
    public var tokenGrace: Duration
    /// How often expiries and ended login sessions are checked: a session's sockets close within about this.
    public var authorityCheckInterval: Duration
    /// How long an ended session is remembered: at least the access tokens' lifetime.
    public var sessionMemory: Duration

    /// The contract's timings: 2 s of presence grace, typing for 5 s; sockets end at most 5 s after their token, ended
    /// sessions are checked every second.
    public init(
        presenceGrace: Duration = .seconds(2),
        typingTimeout: Duration = .seconds(5),
        clock: any Clock<Duration> = ContinuousClock(),
        tokenGrace: Duration = .seconds(5),
        authorityCheckInterval: Duration = .seconds(1),
        sessionMemory: Duration = .seconds(86_400)
    ) {
        self.presenceGrace = presenceGrace
        self.typingTimeout = typingTimeout
        self.clock = clock
        self.tokenGrace = tokenGrace
        self.authorityCheckInterval = authorityCheckInterval
        self.sessionMemory = sessionMemory
    }
}

/// The realtime side of the chat service, as a Socket.IO handler and a `Service`: it admits sockets and hands each job
/// to its part: client events to the ``ClientEventRouter``, bus events to the ``ChatFanout``, sockets coming and going
/// to the ``PresenceTracker``, typing to the ``TypingRelay``, open chats to ``ReadOnDelivery``. The background work of
/// all of them (timers, acks waiting for a commit, read pointers to write) runs in the task group of ``run()``.
public final class ChatRealtime: SocketIOHandler, Service {
    let service: ChatService
    let verifier: any AccessTokenVerifying
    let logger: Logger
    let tasks = BackgroundTasks()
    let presence: PresenceTracker
    let reads: ReadOnDelivery
    let fanout: ChatFanout
    let router: ClientEventRouter
    let authority: SocketAuthority

    /// Creates the handler; attach it to a server with ``attach(to:)``.
    public init(
        service: ChatService,
        verifier: any AccessTokenVerifying,
        logger: Logger,
        presence: any PresenceRegistry = LocalPresence(),
        settings: RealtimeSettings = RealtimeSettings()
    ) {
        self.service = service
        self.verifier = verifier
        self.logger = logger
        self.presence = PresenceTracker(
            registry: presence,
            bus: service.bus,
            grace: settings.presenceGrace,
            clock: settings.clock,
            tasks: self.tasks,
            logger: logger
        )
        self.reads = ReadOnDelivery(service: service, logger: logger)
        self.fanout = ChatFanout(
            service: service,
            sequencer: MessageSequencer(store: service.store, logger: logger),
            presence: self.presence,
            reads: self.reads,
            logger: logger
        )
        let typing = TypingRelay(
            membership: service.membership,
            bus: service.bus,
            lifetime: settings.typingTimeout,
            clock: settings.clock,
            tasks: self.tasks
        )
        self.authority = SocketAuthority(
            verifier: verifier,
            endedSessions: EndedSessions(database: service.store.database),
            settings: settings,
            logger: logger
        )
        self.router = ClientEventRouter(
            service: service,
            typing: typing,
            reads: self.reads,
            authority: self.authority,
            tasks: self.tasks,
            logger: logger
        )
    }

    /// Tells the handler which server carries its events (they are made for each other, so one is set after the other).
    public func attach(to server: SocketIOServer) {
        self.fanout.attach(to: server)
    }

    /// Delivers bus events and runs the parts' background work until shutdown, which cancels what is still waiting.
    public func run() async throws {
        let events = self.service.bus.subscribe()
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.tasks.run() }
                group.addTask { await self.reads.run() }
                group.addTask { await self.presence.maintain() }
                group.addTask { await self.fanout.run(events) }
                group.addTask { await self.fanout.runPresence() }
                group.addTask { await self.authority.run() }
            }
        }
    }

    // MARK: Socket.IO handler

    public func authenticate(auth: JSONValue?, handshake: SocketIOHandshake) async -> SocketIOAdmission? {
        var token = auth?["token"]?.stringValue
        if token == nil, let header = handshake.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            token = String(header.dropFirst(7))
        }
        if token == nil { token = handshake.query["token"] }
        guard let token, let verified = await self.authority.admit(token: token) else { return nil }
        return SocketIOAdmission(userID: verified.userID, attachment: verified)
    }

    public func connected(_ socket: SocketIOSocket) async {
        let userID = socket.userID
        if let token = socket.admission.attachment as? VerifiedAccessToken {
            self.authority.connected(socket, token: token)
        }
        let arrived = self.presence.socketConnected(userID)
        let contacts = (try? await self.service.membership.contacts(of: userID)) ?? []
        if arrived { await self.presence.announceArrival(of: userID, contacts: contacts) }
        let online = await self.presence.online(among: contacts)
        let list = "[" + contacts.filter(online.contains).map(JSONText.quote).joined(separator: ",") + "]"
        socket.emit(EncodedEvent(name: "getOnlineUser", encodedArguments: [list]))
    }

    public func disconnected(_ socket: SocketIOSocket, reason: String) async {
        self.authority.disconnected(socket.id)
        self.reads.socketGone(socket.id)
        self.presence.socketDisconnected(socket.userID)
    }

    public func received(event: String, arguments: [JSONValue], from socket: SocketIOSocket, ack: SocketIOAck?) async {
        let caller = ClientEventRouter.Caller(userID: socket.userID, socketID: socket.id)
        let reply: ClientEventRouter.Ack? = ack.map { ack in { @Sendable arguments in ack(encodedArguments: arguments) } }
        await self.router.receive(name: event, payload: arguments.first, from: caller, ack: reply)
    }
}
