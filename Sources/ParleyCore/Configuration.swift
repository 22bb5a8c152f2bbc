import Foundation
public import Logging

/// A setting that cannot be used; its description is the one line printed before the process stops.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The environment variable at fault.
    public let variable: String
    /// What is wrong with it.
    public let problem: String

    /// Creates an error naming `variable` and what is wrong.
    public init(_ variable: String, _ problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "\(self.variable): \(self.problem)" }
}

/// Where the data lives: the embedded SQLite file, or a PostgreSQL server.
public enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)
}

/// How log lines are written.
public enum LogFormat: String, Sendable {
    case json, text
}

/// How chat events reach the sockets: within this process, or through PostgreSQL to every chat instance.
public enum EventBusKind: String, Sendable {
    case local, postgres
}

/// Every setting of every service, read once from the environment at start.
public struct ParleyConfiguration: Sendable {
    public var host: String
    /// The port from `PARLEY_PORT`, or nil to use the started service's default.
    public var port: Int?
    public var dataDirectory: String
    public var database: DatabaseLocation
    /// From `PARLEY_PUBLIC_URL`, or nil to derive it from host and port.
    public var publicURL: String?
    /// `PARLEY_SMTP_URL`, or nil to print mails to the log.
    public var smtpURL: String?
    public var mailFrom: String
    public var jwtPrivateKeyPEM: String?
    public var userServiceURL: String?
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// `full` (the default: an acknowledged write survives power loss) or `normal`.
    public var sqliteSynchronous: String

    public var otpTTLSeconds: Int
    public var otpResendSeconds: Int
    public var otpMaxAttempts: Int
    public var loginIPLimit: Int
    public var loginIPWindowSeconds: Int
    /// `PARLEY_VERIFY_IP_LIMIT` per `PARLEY_VERIFY_IP_WINDOW_SECONDS`: code checks (`POST /verify`) per client address.
    public var verifyIPLimit: Int
    public var verifyIPWindowSeconds: Int
    /// `PARLEY_LOGIN_FAILURE_WINDOW_SECONDS`: how long wrong codes for an email are remembered after the last one.
    public var loginFailureWindowSeconds: Int
    /// `PARLEY_LOGIN_LOCKOUT_BASE_SECONDS`: the first lockout of an email, once it has had `otpMaxAttempts` wrong codes;
    /// every further wrong code doubles it.
    public var loginLockoutBaseSeconds: Int
    /// `PARLEY_LOGIN_LOCKOUT_MAX_SECONDS`: the longest lockout.
    public var loginLockoutMaxSeconds: Int
    /// `PARLEY_LOGIN_ADDRESS_FAILURE_LIMIT`: wrong codes one client address may enter for one email within the failure window.
    public var loginAddressFailureLimit: Int
    public var accessTokenTTLSeconds: Int
    public var refreshTokenTTLSeconds: Int

    public var mailMaxAttempts: Int
    public var mailRetryBaseSeconds: Double
    public var mailPollSeconds: Double

    /// `PARLEY_MAX_UPLOAD_BYTES`: the largest image.
    public var maxUploadBytes: Int
    /// `PARLEY_MAX_FILE_BYTES`: the largest file of any other kind (sent in a message's `file` field).
    public var maxFileBytes: Int
    /// `PARLEY_RATE_MESSAGES`, `PARLEY_RATE_TYPING`, `PARLEY_RATE_GROUPS`, `PARLEY_RATE_UPLOADS` (`BURST,PER_SECOND`): what
    /// one user may do on one chat instance: sends, edits, deletions and reactions; typing events; new groups; images.
    public var rateLimits: RateLimitSettings
    /// `PARLEY_MAX_DOWNLOADS`: files one instance streams at once (more: 503 `too_many_downloads`).
    public var maxDownloads: Int
    /// `PARLEY_STORAGE_QUOTA_BYTES`: what one user's files may take in all (0: no quota); an upload beyond it is 413
    /// `storage_quota_exceeded`. Deleting messages frees their files' bytes.
    public var storageQuotaBytes: Int
    /// `PARLEY_FILE_SWEEP_SECONDS`: how often a chat instance collects unclaimed uploads and bytes without a file row.
    public var fileSweepSeconds: Double
    /// `PARLEY_NOTIFY_AFTER_SECONDS`: how old an unread direct message or mention must be, with no socket of its recipient
    /// connected, to be mailed.
    public var notifyAfterSeconds: Double
    /// `PARLEY_NOTIFY_INTERVAL_SECONDS`: the least time between two missed-message mails to one person.
    public var notifyIntervalSeconds: Double
    /// `PARLEY_UNCLAIMED_FILE_SECONDS`: how old an upload that no message carries and no one has as avatar must be before
    /// the sweep collects it.
    public var unclaimedFileSeconds: Int

    /// `PARLEY_INSTANCE`: this process's name among instances of its service (it starts Socket.IO session ids), or nil.
    public var instanceName: String?
    /// `PARLEY_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client (a load balancer's addresses).
    public var trustedProxies: Set<String>
    /// `PARLEY_EVENT_BUS`: `postgres` by default when the database is PostgreSQL, otherwise `local`.
    public var eventBus: EventBusKind
    /// `PARLEY_PRESENCE_TTL_SECONDS`: how long an instance's presence entries live without its heartbeat.
    public var presenceTTLSeconds: Int
    /// `PARLEY_MAIL_LEASE_SECONDS`: how long a claimed mail job is a worker's before another may take it.
    public var mailLeaseSeconds: Int
    /// `PARLEY_PRESENCE_GRACE_MS`: how long a user's last socket may be gone before contacts hear `userOffline`.
    public var presenceGraceMillis: Int
    /// `PARLEY_TYPING_TIMEOUT_MS`: how long `typing` lasts without a renewal.
    public var typingTimeoutMillis: Int
    /// `PARLEY_SOCKET_TOKEN_GRACE_SECONDS`: how long after its access token expires a socket that has not renewed is closed.
    public var socketTokenGraceSeconds: Int
    /// `PARLEY_SOCKET_CONNECT_TIMEOUT_SECONDS`: how long a Socket.IO session may go without an authenticated socket.
    public var socketConnectTimeoutSeconds: Int
    /// `PARLEY_SOCKET_MAX_PENDING_PER_ADDRESS`: unauthenticated Socket.IO sessions one client address may hold.
    public var socketMaxPendingPerAddress: Int
    /// `PARLEY_SOCKET_MAX_PENDING_SESSIONS`: unauthenticated Socket.IO sessions the process holds in all.
    public var socketMaxPendingSessions: Int
    /// `PARLEY_SOCKET_HANDSHAKE_BURST`: new Socket.IO sessions a client address may open at once.
    public var socketHandshakeBurst: Int
    /// `PARLEY_SOCKET_HANDSHAKES_PER_SECOND`: new Socket.IO sessions per second a client address may open after its burst.
    public var socketHandshakesPerSecond: Double
    /// `PARLEY_HTTP_IDLE_TIMEOUT_SECONDS`: how long a keep-alive HTTP connection may stay idle after a request.
    public var httpIdleTimeoutSeconds: Int
    /// `PARLEY_HTTP_HEADER_TIMEOUT_SECONDS`: how long a new connection may take to send its first request's head.
    public var httpHeaderTimeoutSeconds: Int
    /// `PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS`: how long a request may take to arrive whole, from its head to its body's end.
    public var httpRequestTimeoutSeconds: Int
    /// `PARLEY_JWT_PREVIOUS_KEY`: a retired signing key (PEM) whose tokens are still accepted and which JWKS still lists.
    public var jwtPreviousKeyPEM: String?
    /// `PARLEY_BLOB_STORE`: where uploaded file bytes live (`disk`, or `s3://…` with the `AWS_*` credentials).
    public var blobStore: BlobStoreLocation
    /// Where spans are exported (OTLP/HTTP JSON, from `OTEL_EXPORTER_OTLP_*`), or nil: none are.
    public var traceExport: TraceExportSettings? = nil

    /// The defaults of the all-in-one run.
    public init() {
        self.host = "127.0.0.1"
        self.port = nil
        self.dataDirectory = "./data"
        self.database = .sqlite(path: "./data/parley.sqlite")
        self.publicURL = nil
        self.smtpURL = nil
        self.mailFrom = "Parley <no-reply@localhost>"
        self.jwtPrivateKeyPEM = nil
        self.userServiceURL = nil
        self.logLevel = .info
        // A person at a terminal reads sentences; a supervisor or collector (systemd, a pipe, a file) gets JSON lines.
        self.logFormat = isatty(STDOUT_FILENO) == 1 ? .text : .json
        self.sqliteSynchronous = "full"
        self.otpTTLSeconds = 300
        self.otpResendSeconds = 60
        self.otpMaxAttempts = 5
        self.loginIPLimit = 30
        self.loginIPWindowSeconds = 600
        self.verifyIPLimit = 30
        self.verifyIPWindowSeconds = 600
        self.loginFailureWindowSeconds = 86400
        self.loginLockoutBaseSeconds = 60
        self.loginLockoutMaxSeconds = 900
        self.loginAddressFailureLimit = 10
        self.accessTokenTTLSeconds = 900
        self.refreshTokenTTLSeconds = 30 * 24 * 3600
        self.mailMaxAttempts = 10
        self.mailRetryBaseSeconds = 5
        self.mailPollSeconds = 1
        self.maxUploadBytes = 10 * 1024 * 1024
        self.maxFileBytes = 25 * 1024 * 1024
        self.rateLimits = RateLimitSettings()
        self.maxDownloads = 128
        self.storageQuotaBytes = 1 << 30
        self.fileSweepSeconds = 3600
        self.notifyAfterSeconds = 900
        self.notifyIntervalSeconds = 3600
        self.unclaimedFileSeconds = 3600
        self.instanceName = nil
        self.trustedProxies = []
        self.eventBus = .local
        self.presenceTTLSeconds = 30
        self.mailLeaseSeconds = 60
        self.presenceGraceMillis = 2000
        self.typingTimeoutMillis = 5000
        self.socketTokenGraceSeconds = 5
        self.socketConnectTimeoutSeconds = 10
        self.socketMaxPendingPerAddress = 200
        self.socketMaxPendingSessions = 10_000
        self.socketHandshakeBurst = 400
        self.socketHandshakesPerSecond = 100
        self.httpIdleTimeoutSeconds = 60
        self.httpHeaderTimeoutSeconds = 20
        self.httpRequestTimeoutSeconds = 300
        self.jwtPreviousKeyPEM = nil
        self.blobStore = .disk
    }

    /// Reads the settings from `environment`, throwing on the first bad value.
    public init(environment: [String: String]) throws {
        self.init()
        var reader = EnvironmentReader(environment: environment)
        if let host = reader.string("PARLEY_HOST") { self.host = host }
        self.port = try reader.int("PARLEY_PORT", in: 0...65535)
        if let dir = reader.string("PARLEY_DATA_DIR") { self.dataDirectory = dir }
        self.database = .sqlite(path: (self.dataDirectory as NSString).appendingPathComponent("parley.sqlite"))
        if let url = reader.string("PARLEY_DATABASE_URL") { self.database = try Self.parseDatabaseURL(url) }
        if let url = reader.string("PARLEY_PUBLIC_URL") {
            guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
                throw ConfigurationError("PARLEY_PUBLIC_URL", "must be an http:// or https:// URL (got \"\(url)\")")
            }
            self.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        self.smtpURL = reader.string("PARLEY_SMTP_URL")
        if let from = reader.string("PARLEY_MAIL_FROM") { self.mailFrom = from }
        self.jwtPrivateKeyPEM = reader.string("PARLEY_JWT_PRIVATE_KEY")
        if let url = reader.string("PARLEY_USER_SERVICE_URL") {
            guard let parsed = URL(string: url), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
                throw ConfigurationError("PARLEY_USER_SERVICE_URL", "must be an http:// or https:// URL (got \"\(url)\")")
            }
            self.userServiceURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        if let level = reader.string("PARLEY_LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ConfigurationError("PARLEY_LOG_LEVEL", "must be one of trace, debug, info, notice, warning, error, critical (got \"\(level)\")")
            }
            self.logLevel = parsed
        }
        if let format = reader.string("PARLEY_LOG_FORMAT") {
            guard let parsed = LogFormat(rawValue: format.lowercased()) else {
                throw ConfigurationError("PARLEY_LOG_FORMAT", "must be json or text (got \"\(format)\")")
            }
            self.logFormat = parsed
        }
        if let mode = reader.string("PARLEY_SQLITE_SYNCHRONOUS") {
            guard ["full", "normal"].contains(mode.lowercased()) else {
                throw ConfigurationError("PARLEY_SQLITE_SYNCHRONOUS", "must be full or normal (got \"\(mode)\")")
            }
            self.sqliteSynchronous = mode.lowercased()
        }
        self.otpTTLSeconds = try reader.int("PARLEY_OTP_TTL_SECONDS", in: 1...86400) ?? self.otpTTLSeconds
        self.otpResendSeconds = try reader.int("PARLEY_OTP_RESEND_SECONDS", in: 0...86400) ?? self.otpResendSeconds
        self.otpMaxAttempts = try reader.int("PARLEY_OTP_MAX_ATTEMPTS", in: 1...100) ?? self.otpMaxAttempts
        self.loginIPLimit = try reader.int("PARLEY_LOGIN_IP_LIMIT", in: 1...1_000_000) ?? self.loginIPLimit
        self.loginIPWindowSeconds = try reader.int("PARLEY_LOGIN_IP_WINDOW_SECONDS", in: 1...86400) ?? self.loginIPWindowSeconds
        try self.readLoginGuards(&reader)
        self.accessTokenTTLSeconds = try reader.int("PARLEY_ACCESS_TOKEN_TTL_SECONDS", in: 10...86400) ?? self.accessTokenTTLSeconds
        self.refreshTokenTTLSeconds = try reader.int("PARLEY_REFRESH_TOKEN_TTL_SECONDS", in: 60...31_536_000) ?? self.refreshTokenTTLSeconds
        self.mailMaxAttempts = try reader.int("PARLEY_MAIL_MAX_ATTEMPTS", in: 1...100) ?? self.mailMaxAttempts
        self.mailRetryBaseSeconds = try reader.double("PARLEY_MAIL_RETRY_BASE_SECONDS", in: 0.05...3600) ?? self.mailRetryBaseSeconds
        self.mailPollSeconds = try reader.double("PARLEY_MAIL_POLL_SECONDS", in: 0.05...60) ?? self.mailPollSeconds
        self.maxUploadBytes = try reader.int("PARLEY_MAX_UPLOAD_BYTES", in: 1024...(1 << 30)) ?? self.maxUploadBytes
        self.maxFileBytes = try reader.int("PARLEY_MAX_FILE_BYTES", in: 1024...(1 << 30)) ?? self.maxFileBytes
        self.maxDownloads = try reader.int("PARLEY_MAX_DOWNLOADS", in: 1...100_000) ?? self.maxDownloads
        self.storageQuotaBytes = try reader.int("PARLEY_STORAGE_QUOTA_BYTES", in: 0...(1 << 50)) ?? self.storageQuotaBytes
        self.fileSweepSeconds = try reader.double("PARLEY_FILE_SWEEP_SECONDS", in: 0.1...86400) ?? self.fileSweepSeconds
        self.unclaimedFileSeconds = try reader.int("PARLEY_UNCLAIMED_FILE_SECONDS", in: 0...(30 * 86400)) ?? self.unclaimedFileSeconds
        self.notifyAfterSeconds = try reader.double("PARLEY_NOTIFY_AFTER_SECONDS", in: 0.1...(7 * 86400)) ?? self.notifyAfterSeconds
        self.notifyIntervalSeconds = try reader.double("PARLEY_NOTIFY_INTERVAL_SECONDS", in: 0...(7 * 86400)) ?? self.notifyIntervalSeconds
        self.rateLimits.messages = try reader.rate("PARLEY_RATE_MESSAGES") ?? self.rateLimits.messages
        self.rateLimits.typing = try reader.rate("PARLEY_RATE_TYPING") ?? self.rateLimits.typing
        self.rateLimits.groups = try reader.rate("PARLEY_RATE_GROUPS") ?? self.rateLimits.groups
        self.rateLimits.uploads = try reader.rate("PARLEY_RATE_UPLOADS") ?? self.rateLimits.uploads
        try self.readScaleOutSettings(&reader)
        self.blobStore = try S3Settings.location(environment: environment)
        self.traceExport = try TraceExportSettings.read(environment)
    }

    private mutating func readLoginGuards(_ reader: inout EnvironmentReader) throws {
        self.verifyIPLimit = try reader.int("PARLEY_VERIFY_IP_LIMIT", in: 1...1_000_000) ?? self.verifyIPLimit
        self.verifyIPWindowSeconds = try reader.int("PARLEY_VERIFY_IP_WINDOW_SECONDS", in: 1...86400) ?? self.verifyIPWindowSeconds
        // Rate-limit counters are pruned after a day, so no window is longer.
        self.loginFailureWindowSeconds = try reader.int("PARLEY_LOGIN_FAILURE_WINDOW_SECONDS", in: 60...86400) ?? self.loginFailureWindowSeconds
        self.loginLockoutBaseSeconds = try reader.int("PARLEY_LOGIN_LOCKOUT_BASE_SECONDS", in: 1...86400) ?? self.loginLockoutBaseSeconds
        self.loginLockoutMaxSeconds = try reader.int("PARLEY_LOGIN_LOCKOUT_MAX_SECONDS", in: 1...86400) ?? self.loginLockoutMaxSeconds
        guard self.loginLockoutMaxSeconds >= self.loginLockoutBaseSeconds else {
            throw ConfigurationError(
                "PARLEY_LOGIN_LOCKOUT_MAX_SECONDS",
                "must be at least PARLEY_LOGIN_LOCKOUT_BASE_SECONDS (\(self.loginLockoutBaseSeconds))"
            )
        }
        guard self.loginFailureWindowSeconds >= self.loginLockoutMaxSeconds else {
            // Otherwise the count of wrong codes would be forgotten during a lockout, and the lockout would stop growing.
            throw ConfigurationError(
                "PARLEY_LOGIN_FAILURE_WINDOW_SECONDS",
                "must be at least PARLEY_LOGIN_LOCKOUT_MAX_SECONDS (\(self.loginLockoutMaxSeconds))"
            )
        }
        self.loginAddressFailureLimit = try reader.int("PARLEY_LOGIN_ADDRESS_FAILURE_LIMIT", in: 1...1000) ?? self.loginAddressFailureLimit
    }

    private mutating func readScaleOutSettings(_ reader: inout EnvironmentReader) throws {
        if let name = reader.string("PARLEY_INSTANCE") {
            let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-".utf8)
            guard (1...32).contains(name.utf8.count), name.utf8.allSatisfy(allowed.contains) else {
                throw ConfigurationError("PARLEY_INSTANCE", "must be 1–32 characters of a–z, 0–9 and - (got \"\(name.prefix(40))\")")
            }
            self.instanceName = name
        }
        if let list = reader.string("PARLEY_TRUSTED_PROXIES") {
            for entry in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
                guard IPAddressText.isValid(entry) else {
                    throw ConfigurationError("PARLEY_TRUSTED_PROXIES", "must be a comma-separated list of IP addresses (got \"\(entry.prefix(60))\")")
                }
                self.trustedProxies.insert(entry)
            }
        }
        if case .postgres = self.database { self.eventBus = .postgres }
        if let bus = reader.string("PARLEY_EVENT_BUS") {
            guard let kind = EventBusKind(rawValue: bus.lowercased()) else {
                throw ConfigurationError("PARLEY_EVENT_BUS", "must be local or postgres (got \"\(bus.prefix(40))\")")
            }
            if kind == .postgres, case .sqlite = self.database {
                throw ConfigurationError("PARLEY_EVENT_BUS", "postgres needs PARLEY_DATABASE_URL to be a postgres:// URL")
            }
            self.eventBus = kind
        }
        self.presenceTTLSeconds = try reader.int("PARLEY_PRESENCE_TTL_SECONDS", in: 3...3600) ?? self.presenceTTLSeconds
        self.mailLeaseSeconds = try reader.int("PARLEY_MAIL_LEASE_SECONDS", in: 2...86400) ?? self.mailLeaseSeconds
        self.presenceGraceMillis = try reader.int("PARLEY_PRESENCE_GRACE_MS", in: 0...600_000) ?? self.presenceGraceMillis
        self.typingTimeoutMillis = try reader.int("PARLEY_TYPING_TIMEOUT_MS", in: 100...600_000) ?? self.typingTimeoutMillis
        self.socketTokenGraceSeconds = try reader.int("PARLEY_SOCKET_TOKEN_GRACE_SECONDS", in: 0...30) ?? self.socketTokenGraceSeconds
        self.socketConnectTimeoutSeconds =
            try reader.int("PARLEY_SOCKET_CONNECT_TIMEOUT_SECONDS", in: 1...300) ?? self.socketConnectTimeoutSeconds
        self.socketMaxPendingPerAddress =
            try reader.int("PARLEY_SOCKET_MAX_PENDING_PER_ADDRESS", in: 1...1_000_000) ?? self.socketMaxPendingPerAddress
        self.socketMaxPendingSessions = try reader.int("PARLEY_SOCKET_MAX_PENDING_SESSIONS", in: 1...10_000_000) ?? self.socketMaxPendingSessions
        self.socketHandshakeBurst = try reader.int("PARLEY_SOCKET_HANDSHAKE_BURST", in: 1...10_000_000) ?? self.socketHandshakeBurst
        self.socketHandshakesPerSecond =
            try reader.double("PARLEY_SOCKET_HANDSHAKES_PER_SECOND", in: 0.001...1_000_000) ?? self.socketHandshakesPerSecond
        self.httpIdleTimeoutSeconds = try reader.int("PARLEY_HTTP_IDLE_TIMEOUT_SECONDS", in: 5...3600) ?? self.httpIdleTimeoutSeconds
        self.httpHeaderTimeoutSeconds = try reader.int("PARLEY_HTTP_HEADER_TIMEOUT_SECONDS", in: 1...600) ?? self.httpHeaderTimeoutSeconds
        self.httpRequestTimeoutSeconds = try reader.int("PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS", in: 2...3600) ?? self.httpRequestTimeoutSeconds
        self.jwtPreviousKeyPEM = reader.string("PARLEY_JWT_PREVIOUS_KEY")
    }

    /// Parses `PARLEY_DATABASE_URL`: `sqlite:<path>` or `postgres://…` / `postgresql://…`.
    static func parseDatabaseURL(_ url: String) throws -> DatabaseLocation {
        if url.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else {
                throw ConfigurationError("PARLEY_DATABASE_URL", "sqlite: needs a file path, as in sqlite:./data/parley.sqlite")
            }
            return .sqlite(path: path)
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard let parsed = URL(string: url), parsed.host != nil, parsed.user != nil else {
                throw ConfigurationError("PARLEY_DATABASE_URL", "must look like postgres://user:password@host:5432/database")
            }
            return .postgres(url: url)
        }
        throw ConfigurationError("PARLEY_DATABASE_URL", "must start with sqlite: or postgres:// (got \"\(url)\")")
    }
}

/// A token bucket's shape: `burst` at once, then `perSecond`.
public struct Rate: Sendable, Equatable {
    public var burst: Int
    public var perSecond: Double

    public init(burst: Int, perSecond: Double) {
        self.burst = burst
        self.perSecond = perSecond
    }
}

/// What one signed-in user may make one chat instance do (see ``ParleyConfiguration/rateLimits``).
public struct RateLimitSettings: Sendable, Equatable {
    /// Sends, edits, deletions and reactions: 60 at once, then 10 a second.
    public var messages = Rate(burst: 60, perSecond: 10)
    /// `typing` and `stopTyping`: 20 at once, then 2 a second.
    public var typing = Rate(burst: 20, perSecond: 2)
    /// New groups: 10 at once, then one a minute.
    public var groups = Rate(burst: 10, perSecond: 1.0 / 60)
    /// Images: 20 at once, then one every 2 seconds.
    public var uploads = Rate(burst: 20, perSecond: 0.5)

    public init() {}
}

/// Reads typed values from the environment; empty values count as unset.
struct EnvironmentReader {
    let environment: [String: String]

    func string(_ name: String) -> String? {
        guard let value = self.environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    func int(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = self.string(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound) (got \"\(text)\")")
        }
        return value
    }

    /// A rate as `BURST,PER_SECOND`: a whole burst of at least 1, then a steady rate above 0 (`60,10`; `10,0.0167` is
    /// one a minute).
    func rate(_ name: String) throws -> Rate? {
        guard let text = self.string(name) else { return nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let burst = Int(parts[0]), (1...10_000_000).contains(burst), let perSecond = Double(parts[1]),
            perSecond > 0, perSecond <= 10_000_000
        else {
            throw ConfigurationError(name, "must be BURST,PER_SECOND, as in 60,10 (got \"\(text)\")")
        }
        return Rate(burst: burst, perSecond: perSecond)
    }

    func double(_ name: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let text = self.string(name) else { return nil }
        guard let value = Double(text), range.contains(value) else {
            throw ConfigurationError(name, "must be a number from \(range.lowerBound) to \(range.upperBound) (got \"\(text)\")")
        }
        return value
    }
}

/// Textual IP addresses, as peers and `X-Forwarded-For` carry them.
public enum IPAddressText {
    /// Whether `text` is an IPv4 or IPv6 address.
    public static func isValid(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// The rate-limit bucket of a client address: an IPv4 address itself; an IPv6 address its /64 (one subscriber gets a
    /// whole /64, so counting single addresses would give them 2^64 buckets); an IPv4-mapped IPv6 address its IPv4.
    public static func bucket(_ text: String) -> String {
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return text }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}
