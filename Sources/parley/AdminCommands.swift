import ArgumentParser
import Foundation
import Logging
import ParleyApp
import ParleyCore

/// `parley users …`: account administration.
struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Administer accounts.", subcommands: [CreateUsers.self])
}

/// `parley users create --count N`: accounts straight into the database, each with an access token.
struct CreateUsers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create users without the login mail; prints one JSON line per user: id, email, name and an access token."
    )

    @Option(help: "How many users (1–1000000).") var count: Int
    @Option(name: .customLong("name-prefix"), help: "Names are \"<prefix> 1\", \"<prefix> 2\"…") var namePrefix = "Bench user"
    @Option(name: .customLong("token-ttl"), help: "Lifetime of the printed access tokens, in seconds (60–31536000).") var tokenTTL = 86_400
    @OptionGroup var options: CommonOptions

    func run() async throws {
        guard (1...1_000_000).contains(self.count) else { CommonOptions.fail("--count must be between 1 and 1000000") }
        guard (60...31_536_000).contains(self.tokenTTL) else { CommonOptions.fail("--token-ttl must be between 60 and 31536000 seconds") }
        let configuration = self.options.load()
        AdminLogging.bootstrap()
        do {
            try await createUsers(
                count: self.count,
                namePrefix: self.namePrefix,
                tokenTTL: self.tokenTTL,
                configuration: configuration,
                logger: Logger(label: "parley"),
                output: { print($0) }
            )
        } catch {
            CommonOptions.fail(AdminError.describe(error))
        }
    }
}

/// `parley seed-history`: many messages into one chat, for history benchmarks.
struct SeedHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-history",
        abstract: "Fill a chat with messages (batched inserts, dense seqs); prints {\"chatId\",\"lastSeq\"}."
    )

    @Option(help: "The chat to fill.") var chat: String?
    @Option(help: "Two user ids, comma-separated: fill their direct chat (created if new).") var between: String?
    @Option(help: "How many messages (1–100000000).") var count: Int
    @OptionGroup var options: CommonOptions

    func run() async throws {
        guard (1...100_000_000).contains(self.count) else { CommonOptions.fail("--count must be between 1 and 100000000") }
        var pair: (String, String)?
        if let between = self.between {
            let ids = between.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard ids.count == 2 else { CommonOptions.fail("--between takes two user ids separated by a comma") }
            pair = (ids[0], ids[1])
        }
        guard (self.chat == nil) != (pair == nil) else { CommonOptions.fail("give either --chat or --between") }
        let configuration = self.options.load()
        AdminLogging.bootstrap()
        let started = ContinuousClock.now
        do {
            let (chatID, lastSeq) = try await seedHistory(
                chatID: self.chat,
                between: pair,
                count: self.count,
                configuration: configuration,
                logger: Logger(label: "parley"),
                progress: { seq in if seq % 100_000 == 0 { FileHandle.standardError.write(Data("seq \(seq)\n".utf8)) } }
            )
            FileHandle.standardError.write(Data("\(self.count) messages in \(ContinuousClock.now - started)\n".utf8))
            print(#"{"chatId":"# + JSONText.quote(chatID) + #","lastSeq":\#(lastSeq)}"#)
        } catch {
            CommonOptions.fail(AdminError.describe(error))
        }
    }
}

/// Admin commands print their results on standard output, so their log goes to standard error; errors only, since
/// their own failure is the one line they end with (PostgresNIO warns when the first query races its pool's start).
enum AdminLogging {
    static func bootstrap() {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
    }
}

/// One line for what went wrong in an admin command.
enum AdminError {
    static func describe(_ error: any Error) -> String {
        if let error = error as? any APIErrorConvertible { return error.apiError.message }
        return String(describing: error).split(separator: "\n").first.map(String.init) ?? "failed"
    }
}

/// `parley backup --to DIR`: a consistent copy of the data of a running Parley.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up the database (SQLite) and the stored files into a new folder, while Parley serves; prints the manifest."
    )

    @Option(help: "The folder to write (new or empty).") var to: String
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let configuration = self.options.load()
        AdminLogging.bootstrap()
        do {
            let manifest = try await ParleyApp.backup(to: self.to, configuration: configuration, logger: Logger(label: "parley"))
            print(#"{"database":"\#(manifest.database)","files":\#(manifest.files),"snapshotAt":\#(manifest.snapshotAt)}"#)
        } catch {
            CommonOptions.fail(AdminError.describe(error))
        }
    }
}

/// `parley restore --from DIR`: a backup into an empty data folder.
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup made by `parley backup` into an empty data folder (PostgreSQL: the files; the database with pg_restore)."
    )

    @Option(help: "The backup folder.") var from: String
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let configuration = self.options.load()
        AdminLogging.bootstrap()
        do {
            let manifest = try await ParleyApp.restore(from: self.from, configuration: configuration, logger: Logger(label: "parley"))
            print(#"{"database":"\#(manifest.database)","files":\#(manifest.files),"snapshotAt":\#(manifest.snapshotAt)}"#)
        } catch {
            CommonOptions.fail(AdminError.describe(error))
        }
    }
}
