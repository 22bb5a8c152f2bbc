import ArgumentParser
import CMallocArenas
import Foundation
import Logging
import ParleyApp
import ParleyCore
import ServiceLifecycle
import UnixSignals

/// The `parley` command: runs the services and their administration.
@main
struct Parley: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley",
        abstract: "A self-hostable chat server.",
        version: ParleyVersion.current,
        subcommands: [Serve.self, Migrate.self, Users.self, SeedHistory.self, Backup.self, Restore.self],
        defaultSubcommand: Serve.self
    )
}

/// Options every subcommand shares; flags override the environment.
struct CommonOptions: ParsableArguments {
    @Option(help: "Address to listen on (PARLEY_HOST).") var host: String?
    @Option(help: "Port to listen on (PARLEY_PORT).") var port: Int?
    @Option(name: .customLong("data-dir"), help: "Data folder (PARLEY_DATA_DIR).") var dataDirectory: String?
    @Option(name: .customLong("database-url"), help: "sqlite:<path> or postgres://… (PARLEY_DATABASE_URL).") var databaseURL: String?

    /// The configuration from the environment with the flags on top, or exits with one line naming the bad setting.
    func load() -> ParleyConfiguration {
        var environment = ProcessInfo.processInfo.environment
        if let host { environment["PARLEY_HOST"] = host }
        if let port { environment["PARLEY_PORT"] = String(port) }
        if let dataDirectory { environment["PARLEY_DATA_DIR"] = dataDirectory }
        if let databaseURL { environment["PARLEY_DATABASE_URL"] = databaseURL }
        do {
            return try ParleyConfiguration(environment: environment)
        } catch {
            Self.fail(error)
        }
    }

    static func fail(_ error: any Error) -> Never {
        FileHandle.standardError.write(Data("parley: \(error)\n".utf8))
        Foundation.exit(1)
    }
}

/// `parley serve [all|user|chat|mail]`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run Parley: everything in one process (the default), or one service.")

    @Argument(help: "What to run: all, user, chat or mail.") var role: String = "all"
    @OptionGroup var options: CommonOptions

    func run() async throws {
        guard let role = ServiceRole(rawValue: self.role) else {
            CommonOptions.fail("unknown service \"\(self.role)\"; choose all, user, chat or mail")
        }
        let configuration = self.options.load()
        ParleyLogging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: "parley")
        // glibc gives every thread that meets contention an allocation arena of its own, up to eight per core, and
        // memory freed in an arena mostly stays with the process. Parley's threads (event loops, SQLite's and the file
        // system's pools, the concurrency runtime's) hand buffers to each other all the time: CMallocArenas caps them at
        // two before main unless MALLOC_ARENA_MAX says otherwise (8 slow readers of a 10 MiB file: 15-38 MiB more
        // resident with glibc's default, 1.5-11 MiB with two).
        logger.debug("malloc arenas", metadata: ["cap": "\(parley_malloc_arena_cap())"])
        do {
            // First in the group, so it stops last: the spans of the last requests still go out.
            let exporter = try TraceExport.bootstrap(role: role, configuration: configuration, logger: Logger(label: "parley.traces"))
            let process = try await buildApplication(role: role, configuration: configuration, logger: logger)
            let services: [any Service] = (exporter.map { [$0] } ?? []) + process.serviceGroupServices
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch let error as ConfigurationError {
            CommonOptions.fail(error)
        }
    }
}

/// `parley migrate`: brings the schema up to date and exits.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the database migrations and exit.")

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let configuration = self.options.load()
        ParleyLogging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: "parley")
        let applied = try await migrateDatabase(configuration: configuration, logger: logger)
        print(applied.isEmpty ? "The schema is up to date." : "Applied migrations: \(applied.map(String.init).joined(separator: ", ")).")
    }
}

extension String: @retroactive Error {}
