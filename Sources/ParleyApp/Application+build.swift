import ChatService
import Foundation
public import Hummingbird
import HummingbirdCore
public import Logging
import MailService
public import ParleyCore
public import ParleyStore
public import ServiceLifecycle
public import SocketIOServer
import UserService

/// One Parley process, built for its role and ready for its service group.
public struct ParleyProcess: Sendable {
    /// The HTTP server with every route of the role.
    public var application: Application<RouterResponder<ParleyRequestContext>>
    /// The database every service of the process uses (also the first of ``services``).
    public var database: Database
    /// The long-running pieces the routes rely on, in the order they start: the database first, then the event bus,
    /// the realtime fan-out and the mail worker.
    public var services: [any Service]
    /// The Socket.IO server of a chat role: its sessions are closed before the HTTP server stops, so that no long-poll
    /// holds the server open.
    public var socketServer: SocketIOServer?

    /// The list for the process's one `ServiceGroup`. A group stops its services in reverse order: the sockets close
    /// first, then the HTTP server, then the workers, and the database goes last.
    public var serviceGroupServices: [any Service] {
        self.services + [self.application] + (self.socketServer.map { [$0] } ?? [])
    }
}

/// Builds the process for `role`: its database, services, routes and HTTP server, none of them running yet.
public func buildApplication(role: ServiceRole, configuration: ParleyConfiguration, logger: Logger) async throws -> ParleyProcess {
    let started = ContinuousClock.now
    // Before anything records a metric: libraries that use the swift-metrics global backend record into `/metrics` too.
    ParleyMetrics.bootstrap()
    // Settings that can be wrong are checked before anything is opened, so a bad one stops the process with one line.
    let keys =
        role.runsUserService
        ? try ConfiguredSigningKeys(currentPEM: configuration.jwtPrivateKeyPEM, previousPEM: configuration.jwtPreviousKeyPEM) : nil
    let transport: (any MailTransport)? =
        role.runsMailService
        ? try configuration.smtpURL.map { try SMTPMailTransport(url: $0, from: configuration.mailFrom) } ?? LogMailTransport() : nil
    let secrets = try await ProcessSecrets.prepare(role: role, configuration: configuration, signingKeys: keys, logger: logger)
    let database = try await Database.open(configuration.database, sqliteSynchronous: configuration.sqliteSynchronous, logger: logger)
    do {
        return try await assemble(
            role: role,
            configuration: configuration,
            database: database,
            secrets: secrets,
            transport: transport,
            started: started,
            logger: logger
        )
    } catch {
        await database.close()
        throw error
    }
}

/// What the process needs from the database before any service runs, read on a connection of its own.
struct ProcessSecrets: Sendable {
    /// The key that signs access tokens, when the process runs the user service.
    var signingKey: SigningKey?
    /// Signs file URLs with the secret every service and instance shares.
    var fileSigner: FileURLSigner
    /// Signs the unsubscribe links of missed-message mail, with another shared secret.
    var unsubscribeLinks: UnsubscribeLinks
    /// What services show each other on the internal routes, made with a third shared secret.
    var serviceCredentials: ServiceCredentials

    /// Applies the migrations the database lacks, then reads (or creates, the first time) the secrets.
    static func prepare(
        role: ServiceRole,
        configuration: ParleyConfiguration,
        signingKeys: ConfiguredSigningKeys?,
        logger: Logger
    ) async throws -> ProcessSecrets {
        let database = try await Database.open(configuration.database, sqliteSynchronous: configuration.sqliteSynchronous, logger: logger)
        return try await database.closing {
            try await Migrator.migrate(database, logger: logger)
            return ProcessSecrets(
                signingKey: try await signingKeys?.load(database: database, dataDirectory: configuration.dataDirectory),
                fileSigner: try await FileURLSigner.load(database: database, baseURL: configuration.publicURL ?? ""),
                unsubscribeLinks: try await UnsubscribeLinks.load(database: database, baseURL: configuration.appURL(role: role)),
                serviceCredentials: try await ServiceCredentials.load(database: database)
            )
        }
    }
}

func assemble(
    role: ServiceRole,
    configuration: ParleyConfiguration,
    database: Database,
    secrets: ProcessSecrets,
    transport: (any MailTransport)?,
    started: ContinuousClock.Instant,
    logger: Logger
) async throws -> ParleyProcess {
    var services: [any Service] = [database]
    // Unique per process: presence rows, bus notifications and mail leases name the process, never a predecessor of the same name.
    let instanceID = "\(configuration.instanceName ?? role.rawValue)-\(Identifier.make().suffix(8))"
    var routes = RouteSet(operations: OperationsController(database: database, started: started, extraChecks: [:]))
    routes.operations.scrapeGauges.append(ScrapeGauges.dataFilesystem(configuration.dataDirectory))

    let mailQueued = role.runsMailService ? Wakeup() : nil
    var verifier: (any AccessTokenVerifying)?
    var userService: UserService?
    if role.runsUserService, let key = secrets.signingKey {
        let tokens = await TokenIssuer(
            key: key,
            accessTokenLifetime: configuration.accessTokenTTLSeconds,
            refreshTokenLifetime: configuration.refreshTokenTTLSeconds
        )
        let service = UserService(
            database: database,
            tokens: tokens,
            settings: .init(configuration: configuration),
            signer: secrets.fileSigner,
            mailQueued: mailQueued
        )
        userService = service
        let userVerifier = await tokens.verifier()
        verifier = userVerifier
        routes.users = UserController(
            service: service,
            verifier: userVerifier,
            unsubscribeLinks: secrets.unsubscribeLinks,
            serviceCredentials: secrets.serviceCredentials
        )
    }

    var socketServer: SocketIOServer?
    var socketConfiguration = SocketIOConfiguration()
    socketConfiguration.sessionIDPrefix = configuration.instanceName
    socketConfiguration.connectTimeout = .seconds(configuration.socketConnectTimeoutSeconds)
    socketConfiguration.limits = SocketIOConfiguration.Limits(
        maxPendingSessions: configuration.socketMaxPendingSessions,
        maxPendingSessionsPerAddress: configuration.socketMaxPendingPerAddress,
        handshakeBurst: configuration.socketHandshakeBurst,
        handshakesPerSecond: configuration.socketHandshakesPerSecond
    )
    if role.runsChatService {
        let chatVerifier: any AccessTokenVerifying
        if let verifier { chatVerifier = verifier } else { chatVerifier = try await remoteVerifier(configuration: configuration, logger: logger) }
        // Chat instances on PostgreSQL hear each other's events through it; a single process needs nothing between processes.
        let postgresBus =
            configuration.eventBus == .postgres && database.dialect == .postgres
            ? PostgresEventBus(database: database, instanceID: instanceID, logger: Logger(label: "parley.bus")) : nil
        if let postgresBus {
            routes.operations.extraChecks["eventBus"] = { postgresBus.isListening }
            services.append(postgresBus)
        }
        let presence: any PresenceRegistry =
            postgresBus != nil
            ? SharedPresence(database: database, instanceID: instanceID, lifetime: .seconds(configuration.presenceTTLSeconds)) : LocalPresence()
        let directory: any UserDirectory & MailAddressBook =
            if let userService {
                UserServiceDirectory(users: userService)
            } else {
                HTTPUserDirectory(baseURL: configuration.userServiceURL ?? "", credentials: secrets.serviceCredentials)
            }
        let blobs = try configuration.makeBlobStore()
        // The files' store: the data folder takes a file, or the bucket answers (S3); down, the instance is unhealthy.
        routes.operations.extraChecks["fileStore"] = { await OperationsController.answers(within: .seconds(2), blobs.check) }
        let chat = ChatService(
            database: database,
            directory: directory,
            blobs: blobs,
            signer: secrets.fileSigner,
            bus: postgresBus ?? InProcessEventBus(),
            maxUploadBytes: configuration.maxUploadBytes,
            maxFileBytes: configuration.maxFileBytes,
            storageQuotaBytes: configuration.storageQuotaBytes,
            limits: UserRateLimits(configuration.rateLimits),
            groupAddRefusals: { userIDs, sql in try await UserService.refusingGroupAdds(among: userIDs, in: sql) }
        )
        if !chat.thumbnailer.isAvailable {
            Logger(label: "parley.files").notice("vipsthumbnail (libvips-tools) not found on PATH: images get no thumbnails")
        }
        routes.chat = ChatController(service: chat, verifier: chatVerifier, downloads: DownloadSlots(limit: configuration.maxDownloads))
        services.append(chat.writer)
        services.append(chat.fileSweeper(configuration: configuration, logger: Logger(label: "parley.files")))
        services.append(
            MissedMessageMailer(
                database: database,
                addressBook: directory,
                presence: presence,
                links: secrets.unsubscribeLinks,
                settings: .init(
                    after: .milliseconds(Int(configuration.notifyAfterSeconds * 1000)),
                    interval: .milliseconds(Int(configuration.notifyIntervalSeconds * 1000)),
                    appURL: configuration.appURL(role: role)
                ),
                mailQueued: mailQueued,
                logger: Logger(label: "parley.missed-mail")
            )
        )
        let realtime = ChatRealtime(
            service: chat,
            verifier: chatVerifier,
            logger: Logger(label: "parley.realtime"),
            presence: presence,
            settings: RealtimeSettings(
                presenceGrace: .milliseconds(configuration.presenceGraceMillis),
                typingTimeout: .milliseconds(configuration.typingTimeoutMillis),
                tokenGrace: .seconds(configuration.socketTokenGraceSeconds),
                // Past the access tokens' lifetime no token of an ended session is valid: its ending can be forgotten.
                sessionMemory: .seconds(configuration.accessTokenTTLSeconds + 60)
            )
        )
        let sockets = SocketIOServer(configuration: socketConfiguration, handler: realtime, logger: Logger(label: "parley.socketio"))
        realtime.attach(to: sockets)
        routes.sockets = sockets
        routes.operations.scrapeGauges.append(ScrapeGauges.sockets(of: sockets))
        SocketIOMetrics.register()
        socketServer = sockets
        services.append(realtime)
    }
    if role.runsMailService, let mailQueued, let transport {
        let worker = "\(ProcessInfo.processInfo.hostName)-\(instanceID)"
        services.append(
            MailDeliveryService(
                outbox: MailOutbox(database: database),
                transport: transport,
                settings: .init(configuration: configuration),
                wakeup: mailQueued,
                worker: worker,
                revise: { job in try await MissedMessageMailer.revise(job, database: database) },
                logger: Logger(label: "parley.mail")
            )
        )
    }

    let router = buildRouter(role: role, configuration: configuration, routes: routes)
    let port = configuration.port ?? role.defaultPort
    let application = Application(
        router: router,
        server: httpServer(router: router, configuration: configuration, maxFrameSize: socketConfiguration.maxPayload),
        configuration: .init(address: .hostname(configuration.host, port: port), serverName: nil),
        onServerRunning: { channel in
            let actualPort = channel.localAddress?.port ?? port
            let url = configuration.publicURL ?? "http://\(configuration.host):\(actualPort)"
            let what = role == .all ? "Parley" : "Parley's \(role.rawValue) service"
            logger.notice("\(what) is ready at \(url)", metadata: ["port": .stringConvertible(actualPort)])
        },
        logger: logger
    )
    return ParleyProcess(application: application, database: database, services: services, socketServer: socketServer)
}

/// HTTP/1.1 with the Socket.IO WebSocket upgrade, as `.http1SocketIO(webSocketRouter:configuration:)` builds it, with the
/// request deadlines in front: a keep-alive connection idle after a request is closed by Hummingbird; one that drips its
/// first request's headers, or any request's body, by ``RequestDeadlineHandler``.
func httpServer(
    router: Router<ParleyRequestContext>,
    configuration: ParleyConfiguration,
    maxFrameSize: Int
) -> HTTPServerBuilder {
    let webSocketResponder = router.buildResponder()
    let timeouts = RequestTimeouts(
        header: .seconds(Int64(configuration.httpHeaderTimeoutSeconds)),
        request: .seconds(Int64(configuration.httpRequestTimeoutSeconds))
    )
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [RequestProgressHandler()],
        idleTimeout: .seconds(Int64(configuration.httpIdleTimeoutSeconds))
    )
    return HTTPServerBuilder { responder in
        RequestDeadlineChannel(
            base: SocketIOHTTP1Channel(
                responder: responder,
                webSocketResponder: webSocketResponder,
                configuration: .init(http1: http1, maxFrameSize: maxFrameSize)
            ),
            timeouts: timeouts
        )
    }
}

extension ParleyConfiguration {
    /// Where people open the web app: the public URL, or the listener's address when none is set.
    func appURL(role: ServiceRole) -> String {
        self.publicURL ?? "http://\(self.host):\(self.port ?? role.defaultPort)"
    }
}
