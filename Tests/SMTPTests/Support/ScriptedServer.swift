import Foundation
import ParleyTestSupport

/// A one-connection SMTP server that answers each line the client sends with the next scripted reply, byte for byte.
///
/// It lets a test send what smtpd.py never would: bare LF line ends, injected data after STARTTLS, AUTH LOGIN only.
final class ScriptedServer: @unchecked Sendable {
    /// One step: the reply to send after reading one client line (or, for `afterContent`, the whole DATA content).
    struct Step: Encodable, Sendable {
        var reply: String
        var afterContent = false
    }

    let port: Int
    private let process: Process
    private let stdout: Pipe

    private static let program = """
        import json, signal, socket, sys
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        greeting, steps = json.loads(sys.argv[1])
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
        print(f"READY {server.getsockname()[1]}", flush=True)
        connection, _ = server.accept()
        reader = connection.makefile("rb")
        connection.sendall(greeting.encode())
        received = []
        for step in steps:
            line = reader.readline()
            if not line:
                break
            if step["afterContent"]:
                while line and line != b".\\r\\n":
                    line = reader.readline()
                received.append("<content>")
            else:
                received.append(line.decode())
            connection.sendall(step["reply"].encode())
        connection.close()
        print(json.dumps(received), flush=True)
        """

    /// Starts the server with a greeting and the replies to give, in order, off the pool.
    static func start(greeting: String, steps: [Step]) async throws -> ScriptedServer {
        try await offThePool { try ScriptedServer(greeting: greeting, steps: steps) }
    }

    private init(greeting: String, steps: [Step]) throws {
        let script = String(decoding: try JSONEncoder().encode([AnyEncodable(greeting), AnyEncodable(steps)]), as: UTF8.self)
        let (process, stdout) = try Python.start(["-c", Self.program, script])
        self.process = process
        self.stdout = stdout
        let line = String(decoding: stdout.fileHandleForReading.availableData, as: UTF8.self)
        guard line.hasPrefix("READY "), let port = Int(line.dropFirst(6).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.stop()
            throw FixtureError("the scripted server printed '\(line)'")
        }
        self.port = port
    }

    /// The lines the client sent, once it has closed the connection.
    func receivedLines() async throws -> [String] {
        let output = try await offThePool {
            let output = self.stdout.fileHandleForReading.readDataToEndOfFile()
            self.process.waitUntilExit()
            return output
        }
        return try JSONDecoder().decode([String].self, from: output)
    }

    /// Ends the server if it is still running.
    func stop() {
        self.process.stop()
    }
}

/// Wraps a value so a heterogeneous array can be encoded.
private struct AnyEncodable: Encodable {
    let encodeValue: (any Encoder) throws -> Void

    init(_ value: some Encodable) {
        self.encodeValue = value.encode
    }

    func encode(to encoder: any Encoder) throws {
        try self.encodeValue(encoder)
    }
}
