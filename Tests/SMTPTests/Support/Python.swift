import Foundation
import ParleyTestSupport

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
    static func parse(_ raw: [UInt8]) async throws -> ParsedMail {
        let output = try await offThePool { try Python.run(program: self.program, input: Data(raw)) }
        return try JSONDecoder().decode(ParsedMail.self, from: output)
    }
}
