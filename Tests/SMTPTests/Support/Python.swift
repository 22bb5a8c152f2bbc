import Foundation

/// Runs python3 for the test fixtures: the SMTP test server and Python's own mail parser.
enum Python {
    /// The repository root, found from this file's path (resolving a scratch package's symlinks).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // SMTPTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// tests/support/smtpd.py in the repository.
    static var smtpdScript: URL { self.repositoryRoot.appendingPathComponent("tests/support/smtpd.py") }

    /// Starts `python3 arguments…` with stdout piped.
    static func start(_ arguments: [String], stdin: Pipe? = nil) throws -> (Process, Pipe) {
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
    static func run(program: String, input: Data) throws -> Data {
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

/// A message as Python's `email` package (policy.default) reads it.
struct ParsedMail: Decodable {
    var subject: String
    var from: String
    var to: String
    var date: String
    var messageID: String
    var contentType: String
    var text: String?
    var html: String?
    var defects: [String]

    private static let program = """
        import email, json, sys
        from email import policy
        raw = sys.stdin.buffer.read()
        message = email.message_from_bytes(raw, policy=policy.default)
        defects = [type(d).__name__ for d in message.defects]
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        for part in message.walk():
            defects += [type(d).__name__ for d in part.defects]
        print(json.dumps({
            "subject": str(message["subject"]), "from": str(message["from"]), "to": str(message["to"]),
            "date": str(message["date"]), "messageID": str(message["message-id"]),
            "contentType": message.get_content_type(),
            "text": text.get_content() if text else None, "html": html.get_content() if html else None,
            "defects": defects,
        }))
        """

    /// Parses raw message bytes with Python.
    static func parse(_ raw: [UInt8]) throws -> ParsedMail {
        let output = try Python.run(program: self.program, input: Data(raw))
        return try JSONDecoder().decode(ParsedMail.self, from: output)
    }
}

/// A fixture that could not be set up.
struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
