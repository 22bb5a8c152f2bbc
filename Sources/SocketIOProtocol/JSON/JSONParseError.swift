/// Why text is not JSON this parser accepts; offsets count UTF-8 bytes from the start.
public enum JSONParseError: Error, Sendable, Hashable {
    /// The text ends inside a value (or is empty).
    case unexpectedEnd
    /// A byte that cannot appear here, including anything after the value.
    case unexpectedCharacter(offset: Int)
    /// A number that breaks JSON's number grammar (`01`, `1.`, `-`, `+1`, …).
    case invalidNumber(offset: Int)
    /// A number too large for a Double (`1e400`).
    case numberOutOfRange(offset: Int)
    /// A backslash followed by something other than `"\/bfnrtu`.
    case invalidEscape(offset: Int)
    /// A `\u` escape without four hex digits, or a surrogate without its pair.
    case invalidUnicodeEscape(offset: Int)
    /// A raw control character (below U+0020) inside a string.
    case controlCharacterInString(offset: Int)
    /// An object names the same key twice.
    case duplicateKey(offset: Int)
    /// Arrays and objects nest deeper than the limit.
    case depthLimitExceeded(offset: Int)
    /// The bytes are not valid UTF-8.
    case invalidUTF8
}
