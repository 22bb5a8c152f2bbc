/// The Engine.IO timings and limits of a Socket.IO server.
public struct SocketIOConfiguration: Sendable {
    /// How often the server pings each session.
    public var pingInterval: Duration
    /// How long the server waits for the pong before it drops the session.
    public var pingTimeout: Duration
    /// The largest polling body or WebSocket message, in bytes, a client may send.
    public var maxPayload: Int
    /// How many packets may wait for one socket; a socket that falls further behind is disconnected.
    public var outboundQueueLimit: Int
    /// How long a session may stay without a connected socket (Socket.IO's `connectTimeout`): a new session that has not
    /// authenticated by then is closed.
    public var connectTimeout: Duration
    /// The largest CONNECT data (the `auth` object) read before authentication, in bytes; a larger one is refused.
    public var maxConnectDataBytes: Int
    /// How long a WebSocket may take between opening and completing the upgrade of a polling session.
    public var upgradeTimeout: Duration
    /// What a client may open before it authenticates.
    public var limits: Limits
    /// Put before every Engine.IO session id with a dot (`chat2.Xy…`), so a load balancer can route a polling
    /// session's requests to the instance that holds it by the `sid` query parameter; nil for a single instance.
    public var sessionIDPrefix: String?

    /// Creates a configuration; the defaults are Engine.IO's and Parley's contract values.
    public init(
        pingInterval: Duration = .seconds(25),
        pingTimeout: Duration = .seconds(20),
        maxPayload: Int = 1_000_000,
        outboundQueueLimit: Int = 1024,
        connectTimeout: Duration = .seconds(10),
        maxConnectDataBytes: Int = 4096,
        upgradeTimeout: Duration = .seconds(10),
        limits: Limits = Limits(),
        sessionIDPrefix: String? = nil
    ) {
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
        self.outboundQueueLimit = outboundQueueLimit
        self.connectTimeout = connectTimeout
        self.maxConnectDataBytes = maxConnectDataBytes
        self.upgradeTimeout = upgradeTimeout
        self.limits = limits
        self.sessionIDPrefix = sessionIDPrefix
    }

    /// Caps on sessions that have not admitted a socket yet (anyone can open one), and on how fast one address opens
    /// sessions. Refused handshakes are answered 429 (this address) or 503 (the server) with an Engine.IO error body.
    public struct Limits: Sendable {
        /// Unauthenticated sessions held at once, in all.
        public var maxPendingSessions: Int
        /// Unauthenticated sessions held at once per client address (IPv6: per /64).
        public var maxPendingSessionsPerAddress: Int
        /// New sessions an address may open at once before the rate applies.
        public var handshakeBurst: Int
        /// New sessions per second an address may open after its burst.
        public var handshakesPerSecond: Double

        /// Generous for people behind one NAT (an office reconnecting after a deploy), small for one attacker.
        public init(
            maxPendingSessions: Int = 10_000,
            maxPendingSessionsPerAddress: Int = 200,
            handshakeBurst: Int = 400,
            handshakesPerSecond: Double = 100
        ) {
            self.maxPendingSessions = maxPendingSessions
            self.maxPendingSessionsPerAddress = maxPendingSessionsPerAddress
            self.handshakeBurst = handshakeBurst
            self.handshakesPerSecond = handshakesPerSecond
        }
    }

    /// A new Engine.IO session id, naming this instance when a prefix is set.
    func makeSessionID() -> String {
        guard let prefix = self.sessionIDPrefix else { return RandomID.make() }
        return prefix + "." + RandomID.make()
    }

    /// The handshake values in milliseconds, as the open packet carries them.
    func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
