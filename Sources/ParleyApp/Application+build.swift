import Foundation
import Hummingbird
import Logging
import MailService
import NIOCore
import ParleyCore
import ParleyStore
import ServiceLifecycle
import UserService
import WebApp
import SocketIOServer
import HummingbirdWebSocket
import ChatService

/// Builds the application for `role`: the services it runs, their routes and background workers.
public func buildApplication(
    role: ServiceRole, configuration: ParleyConfiguration, logger: Logger
) async throws -> some Service {
    let started = ContinuousClock.now
    // Settings that can be wrong are checked before anything is opened, so a bad one stops the process with one line.
    let keys =
        role.runsUserService
        ? try ConfiguredSigningKeys(currentPEM: configuration.jwtPrivateKeyPEM, previousPEM: configuration.jwtPreviousKeyPEM) : nil
    let transport: (any MailTransport)? =
        role.runsMailService ? try configuration.smtpURL.map { try SMTPMailTransport(url: $0, from: configuration.mailFrom) } ?? LogMailTransport() : nil
    let database = try await Database.open(configuration.database, sqliteSynchronous: configuration.sqliteSynchronous, logger: logger)
    do {
        return try await assemble(
            role: role, configuration: configuration, database: database, keys: keys, transport: transport, started: started, logger: logger
        )
    } catch {
        await database.close()
        throw error
    }
}

func assemble(
    role: ServiceRole, configuration: ParleyConfiguration, database: Database, keys: ConfiguredSigningKeys?, transport: (any MailTransport)?,
    started: ContinuousClock.Instant, logger: Logger
) async throws -> some Service {
    var services: [any Service] = [DatabaseCloser(database: database)]
    // Unique per process: presence rows, bus notifications and mail leases name the process, never a predecessor of the same name.
    let instanceID = "\(configuration.instanceName ?? role.rawValue)-\(Identifier.make().suffix(8))"
    var socketConfiguration = SocketIOConfiguration()
    socketConfiguration.sessionIDPrefix = configuration.instanceName
    var socketServerToStop: SocketIOServer?
    try await Migrator.migrate(database, logger: logger)

    let router = Router(context: ParleyRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    if !configuration.trustedProxies.isEmpty {
        router.add(middleware: ForwardedClientMiddleware(trustedProxies: configuration.trustedProxies))
    }
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorMiddleware())
    if role.runsChatService {
        WebApp.addMiddleware(to: router)
    }
    // Chat instances on PostgreSQL hear each other's events through it; a single process needs nothing between processes.
    let postgresBus = role.runsChatService && configuration.eventBus == .postgres && database.dialect == .postgres
        ? PostgresEventBus(database: database, instanceID: instanceID, logger: Logger(label: "parley.bus")) : nil
    var extraChecks: [String: @Sendable () async -> Bool] = [:]
    if let postgresBus {
        extraChecks["eventBus"] = { postgresBus.isListening }
        services.append(postgresBus)
    }
    OperationsController(database: database, started: started, extraChecks: extraChecks).addRoutes(to: router)

    let mailQueued = role.runsMailService ? Wakeup() : nil
    var verifier: (any AccessTokenVerifying)?
    var userService: UserService?
    // File URLs (images, avatars) are signed with a secret kept in the database, the same for every service and instance.
    let signer = try await FileURLSigner.load(database: database, baseURL: configuration.publicURL ?? "")
    if role.runsUserService, let keys {
        let key = try await keys.load(database: database, dataDirectory: configuration.dataDirectory)
        let tokens = await TokenIssuer(
            key: key, accessTokenLifetime: configuration.accessTokenTTLSeconds, refreshTokenLifetime: configuration.refreshTokenTTLSeconds
        )
        let service = UserService(database: database, tokens: tokens, settings: .init(configuration: configuration), signer: signer, mailQueued: mailQueued)
        userService = service
        verifier = await tokens.verifier()
        UserController(service: service, verifier: verifier!).addRoutes(to: router)
    }
    if role.runsChatService {
        let chatVerifier: any AccessTokenVerifying
        if let verifier { chatVerifier = verifier } else { chatVerifier = try await remoteVerifier(configuration: configuration, logger: logger) }
        let bus: any ChatEventBus = postgresBus ?? InProcessEventBus()
        let presence: any PresenceRegistry = postgresBus != nil
            ? SharedPresence(database: database, instanceID: instanceID, lifetime: .seconds(configuration.presenceTTLSeconds)) : LocalPresence()
        let directory: any UserDirectory =
            if let userService { UserServiceDirectory(users: userService) } else { HTTPUserDirectory(baseURL: configuration.userServiceURL ?? "") }
        let chat = ChatService(
            database: database,
            directory: directory,
            blobs: try DiskBlobStore(directory: (configuration.dataDirectory as NSString).appendingPathComponent("files")),
            signer: signer,
            bus: bus,
            maxUploadBytes: configuration.maxUploadBytes
        )
        ChatController(service: chat, verifier: chatVerifier).addRoutes(to: router)
        services.append(chat.writer)
        let realtime = ChatRealtime(service: chat, verifier: chatVerifier, logger: Logger(label: "parley.realtime"), presence: presence)
        let socketServer = SocketIOServer(configuration: socketConfiguration, handler: realtime, logger: Logger(label: "parley.socketio"))
        realtime.attach(to: socketServer)
        socketServer.addRoutes(to: router)
        socketServerToStop = socketServer
        services.append(realtime)
    }
    if role.runsMailService, let mailQueued, let transport {
        let worker = "\(ProcessInfo.processInfo.hostName)-\(instanceID)"
        services.append(
            MailDeliveryService(
                outbox: MailOutbox(database: database), transport: transport, settings: .init(configuration: configuration),
                wakeup: mailQueued, worker: worker, logger: Logger(label: "parley.mail")
            )
        )
    }

    let port = configuration.port ?? role.defaultPort
    let app = Application(
        router: router,
        server: .http1WebSocketUpgrade(webSocketRouter: router, configuration: .init(ws: socketConfiguration.webSocketServerConfiguration)),
        configuration: .init(address: .hostname(configuration.host, port: port), serverName: nil),
        services: services,
        onServerRunning: { channel in
            let actualPort = channel.localAddress?.port ?? port
            let url = configuration.publicURL ?? "http://\(configuration.host):\(actualPort)"
            logger.notice("Parley \(role.rawValue) service is ready at \(url)", metadata: ["port": .stringConvertible(actualPort)])
        },
        logger: logger
    )
    return ParleyProcess(app: app, socketServer: socketServerToStop, logger: logger)
}

/// One Parley process: the application, and the Socket.IO sessions closed first on shutdown so no long-poll holds the HTTP server open.
struct ParleyProcess<App: ApplicationProtocol>: Service {
    let app: App
    let socketServer: SocketIOServer?
    let logger: Logger

    func run() async throws {
        // A service group stops its services in reverse order: the sockets go before the application's server.
        let group = ServiceGroup(configuration: .init(services: [self.app, SocketSessionCloser(server: self.socketServer)], logger: self.logger))
        try await group.run()
    }
}

/// Closes every Socket.IO session when shutdown begins.
struct SocketSessionCloser: Service {
    let server: SocketIOServer?

    func run() async throws {
        try? await gracefulShutdown()
        self.server?.shutdown()
    }
}

/// Closes the database when the service group shuts down, after everything that uses it.
struct DatabaseCloser: Service {
    let database: Database

    func run() async throws {
        try? await gracefulShutdown()
        await self.database.close()
    }
}
