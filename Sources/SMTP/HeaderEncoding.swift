/// Header field rendering: RFC 2047 encoded-words for non-ASCII text and folding to 78-character lines.
enum HeaderEncoding {
    /// RFC 5322 section 2.1.1: lines SHOULD be at most 78 characters, not counting CRLF.
    static let maximumLineLength = 78

    /// 42 UTF-8 bytes make 56 base64 characters, so `Subject: ` plus one 68-character encoded-word still fits a line.
    private static let encodedWordPayloadBytes = 42

    /// Renders `Name: atom atom …`, breaking between atoms (CRLF + space) before a line would exceed 78 characters.
    static func field(_ name: String, atoms: [String]) -> String {
        var output = ""
        var line = "\(name):"
        for atom in atoms where !atom.isEmpty {
            if line.utf8.count + 1 + atom.utf8.count > self.maximumLineLength, line != "\(name):" {
                output += line + "\r\n"
                line = ""
            }
            line += " " + atom
        }
        return output + line + "\r\n"
    }

    /// Unstructured text such as a subject: plain words when ASCII, otherwise encoded-words.
    static func unstructured(_ text: String) -> [String] {
        // A CR or LF from user input must never start a new header line.
        let sanitized = String(text.map { $0.isControlCharacter ? " " : $0 })
        let words = sanitized.split(whereSeparator: \.isWhitespace).map(String.init)
        let fitsAsIs = words.allSatisfy { $0.allSatisfy(\.isASCII) && $0.utf8.count < self.maximumLineLength - 1 }
        // Text that looks like an encoded-word would be decoded by readers, so it is encoded itself.
        if fitsAsIs, !sanitized.contains("=?") { return words }
        return self.encodedWords(sanitized.trimmingWhitespace())
    }

    /// A display name: atoms as they are, a quoted string when it has specials, encoded-words when not ASCII.
    static func phrase(_ name: String) -> [String] {
        let isPrintableASCII = name.unicodeScalars.allSatisfy { (0x20..<0x7F).contains($0.value) }
        guard isPrintableASCII, !name.contains("=?") else { return self.encodedWords(Substring(name)) }
        let atext = Set("!#$%&'*+-/=?^_`{|}~".unicodeScalars)
        let needsQuoting = !name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || atext.contains($0) || $0 == " "
        }
        let words = name.split(separator: " ").map(String.init)
        guard needsQuoting else { return words }
        // Folding may happen at the spaces inside a quoted string (RFC 5322 qcontent with FWS).
        var quoted = words.map { $0.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") }
        quoted[0] = "\"" + quoted[0]
        quoted[quoted.count - 1] += "\""
        return quoted
    }

    /// One mailbox as atoms: `Name <address>` or the bare address.
    static func mailbox(_ mailbox: MailAddress) -> [String] {
        guard let name = mailbox.displayName else { return [mailbox.address] }
        return self.phrase(name) + ["<\(mailbox.address)>"]
    }

    /// A comma-separated list of mailboxes as atoms.
    static func mailboxList(_ mailboxes: [MailAddress]) -> [String] {
        var atoms: [String] = []
        for (index, mailbox) in mailboxes.enumerated() {
            var mailboxAtoms = self.mailbox(mailbox)
            if index < mailboxes.count - 1 { mailboxAtoms[mailboxAtoms.count - 1] += "," }
            atoms += mailboxAtoms
        }
        return atoms
    }

    /// `=?utf-8?B?…?=` words of at most 42 bytes of text each, never splitting a UTF-8 sequence.
    static func encodedWords(_ text: Substring) -> [String] {
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > self.encodedWordPayloadBytes {
                words.append("=?utf-8?B?\(Base64.encode(chunk))?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?utf-8?B?\(Base64.encode(chunk))?=") }
        return words
    }
}

extension String {
    /// The string with every occurrence of `target` replaced, without Foundation.
    func replacingAll(_ target: String, with replacement: String) -> String {
        self.split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
