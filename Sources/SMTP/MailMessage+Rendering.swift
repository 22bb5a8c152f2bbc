extension MailMessage {
    /// The message as RFC 5322 bytes: CRLF line endings, 7-bit headers (unless an address is UTF-8), lines of at most 78 characters.
    public func rendered() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        // "=_" can never occur in quoted-printable output, so the boundary cannot collide with the body.
        let boundary = "=_parley_" + Self.randomHex(using: &generator)
        return Array(self.renderedText(boundary: boundary).utf8)
    }

    /// The message as text with a given MIME boundary, so tests can compare it byte for byte.
    func renderedText(boundary: String) -> String {
        var text = ""
        text += HeaderEncoding.field("Date", atoms: [RFC5322Date.format(self.date)])
        text += HeaderEncoding.field("From", atoms: HeaderEncoding.mailbox(self.from))
        text += HeaderEncoding.field("To", atoms: HeaderEncoding.mailboxList(self.to))
        text += HeaderEncoding.field("Subject", atoms: HeaderEncoding.unstructured(self.subject))
        text += HeaderEncoding.field("Message-ID", atoms: [self.messageID])
        for header in self.extraHeaders where header.isWellFormed {
            text += HeaderEncoding.field(header.name, atoms: header.value.split(separator: " ").map(String.init))
        }
        text += "MIME-Version: 1.0\r\n"
        guard let htmlBody = self.htmlBody else {
            return text + Self.part(contentType: "text/plain", body: self.textBody)
        }
        text += "Content-Type: multipart/alternative;\r\n boundary=\"\(boundary)\"\r\n"
        text += "\r\n"
        text += "--\(boundary)\r\n"
        text += Self.part(contentType: "text/plain", body: self.textBody)
        text += "--\(boundary)\r\n"
        text += Self.part(contentType: "text/html", body: htmlBody)
        text += "--\(boundary)--\r\n"
        return text
    }

    /// A body part's headers, the empty line, and its quoted-printable content ending in CRLF.
    private static func part(contentType: String, body: String) -> String {
        "Content-Type: \(contentType); charset=utf-8\r\n"
            + "Content-Transfer-Encoding: quoted-printable\r\n"
            + "\r\n"
            + QuotedPrintable.encode(body) + "\r\n"
    }
}
