public import Foundation

/// Runs python3 for the test fixtures: the SMTP test server and Python's own mail parser.
public enum Python {
    /// The repository root, found from this file's path (resolving a scratch package's symlinks).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent()  // ParleyTestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// tests/support/smtpd.py in the repository.
    public static var smtpdScript: URL { self.repositoryRoot.appendingPathComponent("tests/support/smtpd.py") }

    /// Starts `python3 arguments…` with stdout piped.
    public static func start(_ arguments: [String], stdin: Pipe? = nil) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        if let stdin { process.standardInput = stdin }
        try process.run()
        return (process, stdout)
    }

    /// Runs a Python program on some input and returns what it printed.
    public static func run(program: String, input: Data) throws -> Data {
        let stdin = Pipe()
        let (process, stdout) = try self.start(["-c", program], stdin: stdin)
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError("python3 exited with status \(process.terminationStatus)")
        }
        return output
    }
}

/// A fixture that could not be set up.
public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
