import ArgumentParser
import Foundation

/// `parley-bench footprint`: how fast a Parley starts and how much memory it holds idle.
struct Footprint: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Starts the parley binary itself: time from exec to /health 200 (fresh data folder, then a restart) and idle RSS."
    )

    @OptionGroup var options: BenchOptions
    @Option(help: "The parley binary to start.") var parley: String
    @Option(name: .customLong("database-url"), help: "PARLEY_DATABASE_URL for the started server (default: SQLite in a fresh data folder).")
    var databaseURL: String?
    @Option(help: "Seconds to let it idle before reading its memory.") var idle = 2.0

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-footprint-\(runTag())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let results = try await BenchContext.with(self.options) { context in
            var figures: [Figure] = []
            for start in ["fresh data folder", "restart"] {
                let (ready, rss) = try await self.startOnce(directory: directory, http: context)
                figures.append(Figure("start to ready, \(start)", ready, "ms", atMost: 1000))
                figures.append(Figure("idle RSS, \(start)", rss, "MiB", atMost: 40))
            }
            return [
                ScenarioResult(
                    scenario: "footprint",
                    parameters: ["database": self.databaseURL == nil ? "sqlite" : "postgres"],
                    figures: figures,
                    resources: nil
                )
            ]
        }
        self.options.print(results)
    }

    private func startOnce(directory: String, http context: BenchContext) async throws -> (readyMilliseconds: Double, rssMiB: Double) {
        let port = try Self.freePort()
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PARLEY_") }
        environment["PARLEY_HOST"] = "127.0.0.1"
        environment["PARLEY_PORT"] = String(port)
        environment["PARLEY_DATA_DIR"] = directory
        environment["PARLEY_LOG_LEVEL"] = "warning"
        if let databaseURL = self.databaseURL { environment["PARLEY_DATABASE_URL"] = databaseURL }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: self.parley)
        process.arguments = ["serve"]
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        let api = ParleyAPI(baseURL: "http://127.0.0.1:\(port)", http: context.api.http)
        let started = Monotonic.nanoseconds()
        try process.run()
        defer {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
        try await api.waitHealthy(timeout: .seconds(30))
        let ready = Double(Monotonic.nanoseconds() - started) / 1e6
        try await Task.sleep(for: .seconds(self.idle))
        guard let rss = ResourceSample.residentBytes(of: process.processIdentifier) else { throw CorrectnessFailure("parley exited while idle") }
        process.terminate()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CorrectnessFailure("parley exited with status \(process.terminationStatus) on SIGTERM") }
        return (ready, Double(rss) / 1_048_576)
    }

    /// A TCP port on 127.0.0.1 that nothing listened on a moment ago.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw CorrectnessFailure("cannot open a socket to find a free port") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { throw CorrectnessFailure("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
