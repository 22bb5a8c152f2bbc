import Foundation
import ParleyCore

/// What the server reads in message text: mentions, reaction emoji, and the words of a search.
enum MessageText {
    /// The most mentions one message may carry (more stay plain text).
    static let maxMentions = 100

    /// The user ids written as `<@USER_ID>` in `text`, once each, in order of appearance.
    static func mentionCandidates(in text: String?) -> [String] {
        guard let text else { return [] }
        var found: [String] = []
        var seen = Set<String>()
        var rest = Substring(text)
        while found.count < Self.maxMentions, let open = rest.range(of: "<@") {
            rest = rest[open.upperBound...]
            guard let close = rest.firstIndex(of: ">") else { break }
            let id = String(rest[..<close])
            if Identifier.isValid(id), seen.insert(id).inserted {
                found.append(id)
                rest = rest[rest.index(after: close)...]
            }
        }
        return found
    }

    /// `text` with each `<@USER_ID>` written as `name(id)` (for mail and other plain-text views).
    static func replacingMentions(in text: String, with name: (String) -> String) -> String {
        var output = ""
        var rest = Substring(text)
        while let open = rest.range(of: "<@") {
            output += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            if let close = after.firstIndex(of: ">"), Identifier.isValid(String(after[..<close])) {
                output += name(String(after[..<close]))
                rest = after[after.index(after: close)...]
            } else {
                output += "<@"
                rest = after
            }
        }
        return output + rest
    }

    /// Whether `text` is exactly one emoji: one grapheme, shown as an emoji (by default, or asked for with VS16 or a keycap),
    /// made only of emoji, their modifiers, joiners and tags.
    static func isSingleEmoji(_ text: String) -> Bool {
        guard text.count == 1, text.utf8.count <= 64, let first = text.unicodeScalars.first else { return false }
        let scalars = text.unicodeScalars
        let madeOfEmoji = scalars.allSatisfy { scalar in
            let value = scalar.value
            return scalar.properties.isEmoji || scalar.properties.isEmojiModifier || value == 0xFE0F || value == 0x200D || value == 0x20E3
                || (0xE0020...0xE007F).contains(value)
        }
        guard madeOfEmoji else { return false }
        // Digits, # and * are "emoji" only as keycaps; other text-default symbols (©, ™, ↔) need VS16.
        return first.properties.isEmojiPresentation || scalars.contains { $0.value == 0xFE0F || $0.value == 0x20E3 }
    }

    /// The most words a search looks for, and the longest word.
    static let maxSearchWords = 10
    static let maxWordLength = 64

    /// The words of a search query: runs of letters and digits, lower-cased, at most ``maxSearchWords``; a word followed by
    /// `*` is a prefix.
    static func searchWords(in query: String) -> [SearchWord] {
        var words: [SearchWord] = []
        let utf16 = query.utf16
        for run in Self.wordRuns(in: query) where words.count < Self.maxSearchWords {
            guard let text = String(utf16[run.range])?.lowercased().prefix(Self.maxWordLength) else { continue }
            let word = SearchWord(text: String(text), isPrefix: run.range.upperBound < utf16.endIndex && utf16[run.range.upperBound] == 0x2A)
            if !words.contains(word) { words.append(word) }
        }
        return words
    }

    /// The ranges of `text` (UTF-16 offsets) holding one of `words` (or a word starting with a prefix among them), in order.
    static func highlights(of words: [SearchWord], in text: String) -> [(start: Int, end: Int)] {
        var ranges: [(start: Int, end: Int)] = []
        for run in Self.wordRuns(in: text) {
            guard let word = String(text.utf16[run.range])?.lowercased() else { continue }
            if words.contains(where: { $0.isPrefix ? word.hasPrefix($0.text) : word == $0.text }) { ranges.append((run.start, run.end)) }
        }
        return ranges
    }

    /// Whether `text` holds every one of `words`, by the rule of ``highlights(of:in:)`` (the rule of the search indexes).
    static func matches(_ words: [SearchWord], in text: String) -> Bool {
        var missing = words
        for run in Self.wordRuns(in: text) {
            guard let word = String(text.utf16[run.range])?.lowercased() else { continue }
            missing.removeAll { $0.isPrefix ? word.hasPrefix($0.text) : word == $0.text }
            if missing.isEmpty { return true }
        }
        return missing.isEmpty
    }

    /// The runs of letters, digits and combining marks in `text`, with their UTF-16 offsets.
    private static func wordRuns(in text: String) -> [(range: Range<String.UTF16View.Index>, start: Int, end: Int)] {
        var runs: [(range: Range<String.UTF16View.Index>, start: Int, end: Int)] = []
        var start: String.Index?
        var startOffset = 0
        var offset = 0
        func close(at index: String.Index) {
            guard let from = start else { return }
            runs.append((from..<index, startOffset, offset))
            start = nil
        }
        for index in text.indices {
            let character = text[index]
            if character.isLetter || character.isNumber {
                if start == nil {
                    start = index
                    startOffset = offset
                }
            } else {
                close(at: index)
            }
            offset += character.utf16.count
        }
        close(at: text.endIndex)
        return runs
    }
}

/// A word of a search: matched whole, or as the start of words when the query wrote it with `*` after it (`deploy*`).
struct SearchWord: Equatable, Sendable {
    var text: String
    var isPrefix: Bool
}
