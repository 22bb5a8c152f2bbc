import Foundation
import Synchronization

/// A Python helper script from tests/support/sio run as a child process, its output read as it comes.
///
/// Unchecked: `Process` is not Sendable; after `run()` it is only asked for its pid.
final class PythonClient: @unchecked Sendable {
    /// The repository root, found from this file's path.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Whether python3 with python-socketio, websocket-client and requests is installed. CI installs them
    /// (tests/requirements.txt), so there the tests run, and fail, rather than being skipped.
    static let isAvailable: Bool = {
        if ProcessInfo.processInfo.environment["CI"] != nil { return true }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import socketio, websocket, requests"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// What the process printed and how it ended, shared with the pipe and termination handlers.
    private final class Output: Sendable {
        struct State {
            var stdout = ""
            var stderr = ""
            var status: Int32?
        }

        let state = Mutex(State())
        /// One entry per arrival of output or the exit, to wait on.
        let log = EventLog<Void>()

        func update(_ change: (inout State) -> Void) {
            self.state.withLock { change(&$0) }
            self.log.append(())
        }
    }

    private let process: Process
    private let output = Output()

    /// Starts `tests/support/sio/<script>` with `arguments`.
    init(script: String, arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let path = Self.repositoryRoot.appendingPathComponent("tests/support/sio/\(script)").path
        process.arguments = ["python3", "-u", path] + arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        self.process = process
        let output = self.output
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else { return }
            output.update { $0.stdout += String(decoding: data, as: UTF8.self) }
        }
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else { return }
            output.update { $0.stderr += String(decoding: data, as: UTF8.self) }
        }
        let stdoutHandle = stdout.fileHandleForReading
        let stderrHandle = stderr.fileHandleForReading
        process.terminationHandler = { process in
            // Read what is left before the exit is reported, so a waiter sees the whole output.
            stdoutHandle.readabilityHandler = nil
            stderrHandle.readabilityHandler = nil
            let rest = stdoutHandle.readDataToEndOfFile()
            let errors = stderrHandle.readDataToEndOfFile()
            output.update {
                $0.stdout += String(decoding: rest, as: UTF8.self)
                $0.stderr += String(decoding: errors, as: UTF8.self)
                $0.status = process.terminationStatus
            }
        }
        try process.run()
    }

    /// Runs a script to its end and returns its exit status and output.
    static func run(
        _ script: String,
        _ arguments: String...,
        timeout: Duration = .seconds(30)
    ) async throws -> (
        status: Int32?, stdout: String, stderr: String
    ) {
        let client = try PythonClient(script: script, arguments: arguments)
        let status = await client.exit(timeout: timeout)
        if status == nil { client.signal(SIGKILL) }
        return (status, client.stdout, client.stderr)
    }

    /// What the script printed so far.
    var stdout: String { self.output.state.withLock { $0.stdout } }

    /// What the script printed on stderr so far.
    var stderr: String { self.output.state.withLock { $0.stderr } }

    /// Waits until the script printed a line containing `text`; false on timeout or exit.
    func waitForOutput(_ text: String, timeout: Duration = .seconds(20)) async -> Bool {
        let output = self.output
        _ = await output.log.wait(timeout: timeout) { _ in
            output.state.withLock { $0.stdout.contains(text) || $0.status != nil }
        }
        return self.stdout.contains(text)
    }

    /// Waits for the script to exit; nil on timeout.
    func exit(timeout: Duration) async -> Int32? {
        let output = self.output
        _ = await output.log.wait(timeout: timeout) { _ in output.state.withLock { $0.status != nil } }
        return output.state.withLock { $0.status }
    }

    /// Sends a signal (SIGKILL, SIGSTOP, SIGCONT) to the script.
    func signal(_ signal: Int32) {
        kill(self.process.processIdentifier, signal)
    }
}
