import Foundation
import ParleyCore

/// Email addresses as the user service accepts them: trimmed, lower-cased, a plain `local@domain.tld`.
enum EmailAddress {
    /// The normalised address, or ``UserError/invalidEmail``.
    static func normalise(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let invalid = UserError.invalidEmail
        guard (3...254).contains(email.utf8.count) else { throw invalid }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let local = parts.first, let domain = parts.last else { throw invalid }
        guard (1...64).contains(local.utf8.count), !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else { throw invalid }
        let localAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789.!#$%&'*+/=?^_`{|}~-".utf8)
        guard local.utf8.allSatisfy({ localAllowed.contains($0) }) else { throw invalid }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { throw invalid }
        let labelAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-".utf8)
        for label in labels {
            guard (1...63).contains(label.utf8.count), !label.hasPrefix("-"), !label.hasSuffix("-"),
                label.utf8.allSatisfy({ labelAllowed.contains($0) })
            else { throw invalid }
        }
        return email
    }
}

/// Display names: 1–50 characters after trimming, no control characters.
enum DisplayName {
    static let maxLength = 50

    /// The trimmed name, or ``UserError/invalidName(_:)`` saying why not.
    static func validate(_ raw: String) throws -> String {
        let name = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty else { throw UserError.invalidName("The name must not be empty.") }
        guard name.count <= Self.maxLength, name.utf8.count <= 4 * Self.maxLength else {
            throw UserError.invalidName("The name must be at most 50 characters.")
        }
        guard !NameText.hasHiddenCharacters(name) else { throw UserError.invalidName("The name must not contain control characters.") }
        return name
    }

    /// A default name from an email's local part, always valid.
    static func fromEmail(_ email: String) -> String {
        let local = String(email.prefix { $0 != "@" })
        return local.isEmpty ? "user" : String(local.prefix(Self.maxLength))
    }
}
