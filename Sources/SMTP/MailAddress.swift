/// Why a mail address could not be parsed; `description` is one human sentence.
public struct MailAddressError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The sentence naming what is wrong.
    public let message: String

    /// Creates an error with its sentence.
    public init(_ message: String) {
        self.message = message
    }

    /// The sentence naming what is wrong.
    public var description: String { self.message }
}

/// A mailbox: an address such as `no-reply@localhost` with an optional display name such as `Parley`.
public struct MailAddress: Hashable, Sendable {
    /// The display name, or nil.
    public let displayName: String?
    /// The bare address, `local@domain`.
    public let address: String

    /// Creates a mailbox from a bare address and an optional display name, validating both.
    public init(address: String, displayName: String? = nil) throws(MailAddressError) {
        try Self.validate(address: address)
        if let displayName, displayName.contains(where: \.isControlCharacter) {
            throw MailAddressError("the display name of \(address) contains control characters")
        }
        self.address = address
        let trimmedName = displayName?.trimmingWhitespace()
        self.displayName = trimmedName.flatMap { $0.isEmpty ? nil : String($0) }
    }

    /// Parses `Parley <no-reply@localhost>`, `"Doe, Jane" <jane@example.com>` or a bare `jane@example.com`.
    public init(parsing text: String) throws(MailAddressError) {
        let trimmed = text.trimmingWhitespace()
        guard trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") else {
            guard !trimmed.contains("<"), !trimmed.contains(">") else {
                throw MailAddressError("'\(trimmed)' has unbalanced angle brackets")
            }
            try self.init(address: String(trimmed))
            return
        }
        let address = trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)]
        var name = trimmed[..<open].trimmingWhitespace()
        if name.hasPrefix("\"") {
            guard name.count >= 2, name.hasSuffix("\"") else {
                throw MailAddressError("the display name in '\(trimmed)' has an unclosed quote")
            }
            name = Self.unquoted(name.dropFirst().dropLast())
        }
        try self.init(address: String(address), displayName: String(name))
    }

    /// The part before the '@'.
    public var localPart: Substring { self.address[..<self.atIndex] }

    /// The part after the '@'.
    public var domain: Substring { self.address[self.address.index(after: self.atIndex)...] }

    private var atIndex: String.Index {
        // Validation guarantees exactly one '@'.
        self.address.lastIndex(of: "@")!
    }

    private static func unquoted(_ quoted: Substring) -> Substring {
        var result = ""
        var escaping = false
        for character in quoted {
            if !escaping, character == "\\" {
                escaping = true
                continue
            }
            result.append(character)
            escaping = false
        }
        return Substring(result)
    }

    /// RFC 5321 limits; non-ASCII is allowed in both parts because SMTPUTF8 servers accept it.
    private static func validate(address: String) throws(MailAddressError) {
        guard !address.isEmpty else { throw MailAddressError("the mail address is empty") }
        guard address.utf8.count <= 254 else { throw MailAddressError("the mail address is longer than 254 bytes") }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw MailAddressError("'\(address)' is not a mail address (it must contain exactly one '@')")
        }
        let (local, domain) = (parts[0], parts[1])
        guard !local.isEmpty, local.utf8.count <= 64 else {
            throw MailAddressError("the part before '@' in '\(address)' must be 1 to 64 bytes long")
        }
        let atext = Set("!#$%&'*+-/=?^_`{|}~".unicodeScalars)
        let localIsValid = local.unicodeScalars.allSatisfy { scalar in
            scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || atext.contains(scalar) || scalar == "."
                || (scalar.value >= 0x80 && !scalar.properties.isWhitespace && scalar.properties.generalCategory != .control)
        }
        guard localIsValid, !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else {
            throw MailAddressError("the part before '@' in '\(address)' contains characters a mail address cannot have")
        }
        try self.validate(domain: domain, of: address)
    }

    private static func validate(domain: Substring, of address: String) throws(MailAddressError) {
        if domain.hasPrefix("["), domain.hasSuffix("]"), domain.count > 2 {
            // An address literal such as [127.0.0.1]; its inside is the server's business.
            return
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        let labelsAreValid = labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { $0 == "-" || $0.properties.isAlphabetic || ("0"..."9").contains($0) }
        }
        guard labelsAreValid else {
            throw MailAddressError("the domain of '\(address)' is not a valid host name")
        }
    }
}

extension MailAddress: CustomStringConvertible {
    /// `Name <address>` or the bare address, unencoded, for logs.
    public var description: String {
        guard let displayName = self.displayName else { return self.address }
        return "\(displayName) <\(self.address)>"
    }
}
