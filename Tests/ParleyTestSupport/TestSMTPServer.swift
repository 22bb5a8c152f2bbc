public import Foundation
import Synchronization

/// A running tests/support/smtpd.py on a free port, stopped by `stop()`.
public final class TestSMTPServer: @unchecked Sendable {
    /// One message as the server recorded it.
    public struct Delivery: Decodable, Sendable {
        public var mailFrom: String
        public var rcptTos: [String]
        public var data: String
    }

    public let port: Int
    public let outFile: URL
    private let process: Process
    /// What was read of the file so far, and the messages in it: each message is read and decoded once. The tests of a
    /// process share one server, and each waiting test asks every 20 ms, so reading the whole file each time cost a
    /// seventh of the Swift tests' CPU.
    private let read = Mutex<(offset: UInt64, deliveries: [Delivery])>((0, []))

    /// Starts the server with extra flags (`--auth`, `--tls-cert`, …) and waits for its READY line, off the pool.
    public static func start(_ flags: [String] = []) async throws -> TestSMTPServer {
        try await offThePool { try TestSMTPServer(flags) }
    }

    private init(_ flags: [String]) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("smtpd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.outFile = directory.appendingPathComponent("out.jsonl")
        let arguments = [Python.smtpdScript.path, "--port", "0", "--out", self.outFile.path] + flags
        let (process, stdout) = try Python.start(arguments)
        self.process = process
        // Port 0 lets the system choose, so parallel tests never race for a port; READY tells which one.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            guard !chunk.isEmpty else {
                throw FixtureError("smtpd.py exited before READY (is aiosmtpd installed? pip install aiosmtpd)")
            }
            line += chunk
        }
        let words = String(decoding: line, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard words.count == 2, words[0] == "READY", let port = Int(words[1]) else {
            process.terminate()
            throw FixtureError("smtpd.py printed '\(String(decoding: line, as: UTF8.self))' instead of READY <port>")
        }
        self.port = port
    }

    /// The messages accepted so far, in order.
    public func deliveries() throws -> [Delivery] {
        try self.read.withLock { read in
            guard let file = FileHandle(forReadingAtPath: self.outFile.path) else { return read.deliveries }
            defer { try? file.close() }
            try file.seek(toOffset: read.offset)
            let data = try file.readToEnd() ?? Data()
            // Only complete lines: the server may be half-way through writing the last one.
            guard let end = data.lastIndex(of: UInt8(ascii: "\n")) else { return read.deliveries }
            for line in data[data.startIndex..<end].split(separator: UInt8(ascii: "\n")) {
                read.deliveries.append(try JSONDecoder().decode(Delivery.self, from: Data(line)))
            }
            read.offset += UInt64(end - data.startIndex + 1)
            return read.deliveries
        }
    }

    /// Sends SIGTERM and waits for the process to end.
    public func stop() {
        self.process.stop()
        try? FileManager.default.removeItem(at: self.outFile.deletingLastPathComponent())
    }
}

/// A self-signed certificate for localhost and 127.0.0.1, made once per test run.
public enum TestCertificate {
    /// The directory holding cert.pem and key.pem.
    public static let directory: Result<URL, any Error> = Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-cert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", directory.appendingPathComponent("key.pem").path,
            "-out", directory.appendingPathComponent("cert.pem").path,
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw FixtureError("openssl could not make a certificate") }
        return directory
    }

    /// The certificate's path.
    public static func certificate() throws -> String { try self.directory.get().appendingPathComponent("cert.pem").path }

    /// The private key's path.
    public static func key() throws -> String { try self.directory.get().appendingPathComponent("key.pem").path }

    /// smtpd.py flags that serve this certificate (made off the pool the first time: openssl takes a while).
    public static func serverFlags() async throws -> [String] {
        _ = try await offThePool { try self.directory.get() }
        return ["--tls-cert", try self.certificate(), "--tls-key", try self.key()]
    }
}

/// A socket that accepts connections (through the kernel backlog) but never says a word.
public final class SilentServer: @unchecked Sendable {
    public let port: Int
    private let process: Process

    /// Starts listening on a free port, off the pool.
    public static func start() async throws -> SilentServer {
        try await offThePool { try SilentServer() }
    }

    private init() throws {
        let program = """
            import signal, socket
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
            print(f"READY {s.getsockname()[1]}", flush=True)
            signal.pause()
            """
        let (process, stdout) = try Python.start(["-c", program])
        self.process = process
        let line = String(decoding: stdout.fileHandleForReading.availableData, as: UTF8.self)
        guard line.hasPrefix("READY "), let port = Int(line.dropFirst(6).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw FixtureError("the silent server printed '\(line)'")
        }
        self.port = port
    }

    /// Stops listening.
    public func stop() {
        self.process.stop()
    }
}

extension Process {
    /// Ends a fixture process: SIGTERM now, then SIGKILL if it is still there after five seconds. The wait is on a thread
    /// of its own, so neither the test nor the pool it runs on waits for it.
    public func stop() {
        guard self.isRunning else { return }
        self.terminate()
        let process = UncheckedProcess(process: self)
        Thread {
            let deadline = Date().addingTimeInterval(5)
            while process.process.isRunning, Date() < deadline {
                Thread.sleep(forTimeInterval: 0.02)
            }
            if process.process.isRunning {
                kill(process.process.processIdentifier, SIGKILL)
            }
            process.process.waitUntilExit()
        }.start()
    }
}

/// A process handed to the thread that reaps it, which is then its only user.
private struct UncheckedProcess: @unchecked Sendable {
    let process: Process
}
