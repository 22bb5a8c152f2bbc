import SocketIOProtocol
import Testing

/// The JSON parser: RFC 8259 values, and every way it refuses text.
struct JSONParserTests {
    @Test func parsesScalars() throws {
        #expect(try JSONValue(parsing: "null") == .null)
        #expect(try JSONValue(parsing: "true") == .bool(true))
        #expect(try JSONValue(parsing: "false") == .bool(false))
        #expect(try JSONValue(parsing: #""hi""#) == .string("hi"))
        #expect(try JSONValue(parsing: " \t\r\n 1 \n") == .number(1))
    }

    @Test(
        "parses numbers per the JSON grammar",
        arguments: [
            ("0", 0), ("-0", -0.0), ("7", 7), ("-12", -12), ("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000), ("1E-2", 0.01),
            ("-12.5e+3", -12_500), ("25000", 25_000), ("999999999999999", 999_999_999_999_999),
            ("12345678901234567890", 12_345_678_901_234_567_890), ("1.7976931348623157e308", .greatestFiniteMagnitude),
            ("5e-324", .leastNonzeroMagnitude), ("1e-400", 0),
        ] as [(String, Double)]
    )
    func parsesNumber(text: String, value: Double) throws {
        #expect(try JSONValue(parsing: text) == .number(value))
    }

    @Test func negativeZeroKeepsItsSign() throws {
        let value = try #require(try JSONValue(parsing: "-0").doubleValue)
        #expect(value.sign == .minus)
    }

    @Test("refuses numbers outside the grammar", arguments: ["01", "-01", "1.", "1.e3", "-", "-a", "1e", "1e+", "1E-", "--1", "-.5"])
    func refusesBadNumber(text: String) {
        #expect(throws: JSONParseError.invalidNumber(offset: 0)) { try JSONValue(parsing: text) }
    }

    @Test("refuses what JavaScript alone accepts", arguments: ["+1", ".5", "NaN", "Infinity", "0x10", "'a'", "undefined", "nul", "True"])
    func refusesNonJSON(text: String) {
        #expect(throws: (any Error).self) { try JSONValue(parsing: text) }
    }

    @Test func refusesNumbersTooLargeForADouble() {
        #expect(throws: JSONParseError.numberOutOfRange(offset: 1)) { try JSONValue(parsing: "[1e400]") }
        #expect(throws: JSONParseError.numberOutOfRange(offset: 0)) { try JSONValue(parsing: "-" + String(repeating: "9", count: 400)) }
    }

    @Test func decodesEveryEscape() throws {
        #expect(try JSONValue(parsing: #""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try JSONValue(parsing: #""a\u00e9b\u20AC""#) == .string("aéb€"))
        #expect(try JSONValue(parsing: #""\u0000\u001e""#) == .string("\u{0}\u{1E}"))
    }

    @Test func joinsSurrogatePairs() throws {
        #expect(try JSONValue(parsing: #""\uD83D\uDE00""#) == .string("😀"))
        #expect(try JSONValue(parsing: #""x\ud83d\ude00y""#) == .string("x😀y"))
    }

    @Test func passesRawUTF8Through() throws {
        #expect(try JSONValue(parsing: #""é€😀""#) == .string("é€😀"))
        #expect(try JSONValue(parsingUTF8: Array(#"{"ключ":"值"}"#.utf8)) == ["ключ": "值"])
    }

    @Test(
        "refuses broken unicode escapes",
        arguments: [#""\uD83D""#, #""\uDE00""#, #""\uD83Dx""#, #""\uD83D\u0041""#, #""\uD83D\n""#, #""\u12G4""#, #""\u12""#, #""\uD83D\uDE0""#]
    )
    func refusesBrokenUnicodeEscape(text: String) {
        #expect(throws: JSONParseError.invalidUnicodeEscape(offset: 1)) { try JSONValue(parsing: text) }
    }

    @Test("refuses unknown escapes", arguments: [#""\x""#, #""\'""#, #""\U0041""#, #""\ ""#])
    func refusesUnknownEscape(text: String) {
        #expect(throws: JSONParseError.invalidEscape(offset: 1)) { try JSONValue(parsing: text) }
    }

    @Test func refusesRawControlCharactersInStrings() {
        #expect(throws: JSONParseError.controlCharacterInString(offset: 2)) { try JSONValue(parsing: "\"a\nb\"") }
        #expect(throws: JSONParseError.controlCharacterInString(offset: 1)) { try JSONValue(parsing: "\"\u{1E}\"") }
    }

    @Test(
        "refuses text that ends inside a value",
        arguments: ["", " ", "[", "[1", "[1,", "{", #"{"a""#, #"{"a":"#, #"{"a":1"#, #"""#, #""abc"#, #""\"#, #""\u00"#, "tru", "n"]
    )
    func refusesTruncatedText(text: String) {
        #expect(throws: JSONParseError.unexpectedEnd) { try JSONValue(parsing: text) }
    }

    @Test(
        "refuses misplaced bytes with their offset",
        arguments: [
            ("1 2", 2), ("[1,]", 3), ("[,1]", 1), ("[1 2]", 3), (#"{"a" 1}"#, 5), (#"{"a":1,}"#, 7), ("{1:2}", 1), (#"{"a":1]"#, 6),
            ("[1}", 2), ("}", 0), ("tree", 2), ("nulL", 3), ("[]]", 2), (#""a"x"#, 3), ("\u{FEFF}1", 0),
        ]
    )
    func refusesUnexpectedCharacter(text: String, offset: Int) {
        #expect(throws: JSONParseError.unexpectedCharacter(offset: offset)) { try JSONValue(parsing: text) }
    }

    @Test func parsesNestedContainersKeepingKeyOrder() throws {
        let value = try JSONValue(parsing: #"{"z":1,"a":[true,null,{"m":"x"}],"k":{}}"#)
        #expect(value.objectValue?.keys == ["z", "a", "k"])
        #expect(value["a"]?[2]?["m"] == "x")
        #expect(value["k"] == .object(JSONObject()))
        #expect(value["missing"] == nil)
        #expect(value["a"]?[3] == nil)
        #expect(value["a"]?[-1] == nil)
    }

    @Test func refusesDuplicateKeys() throws {
        #expect(throws: JSONParseError.duplicateKey(offset: 7)) { try JSONValue(parsing: #"{"a":1,"a":2}"#) }
        let many = (0..<40).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        #expect(throws: JSONParseError.duplicateKey(offset: many.utf8.count + 2)) { try JSONValue(parsing: "{" + many + #","k3":0}"#) }
        #expect(try JSONValue(parsing: "{" + many + "}").objectValue?.count == 40)
    }

    @Test func acceptsNestingUpToTheDepthLimit() throws {
        let deep = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSONValue(parsing: deep).arrayValue?.count == 1)
        let deepObject = String(repeating: #"{"a":"#, count: 64) + "1" + String(repeating: "}", count: 64)
        #expect(try JSONValue(parsing: deepObject)["a"] != nil)
    }

    @Test func refusesNestingBeyondTheDepthLimit() {
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONParseError.depthLimitExceeded(offset: 64)) { try JSONValue(parsing: tooDeep) }
        let hostile = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.depthLimitExceeded(offset: 64)) { try JSONValue(parsing: hostile) }
        #expect(throws: JSONParseError.depthLimitExceeded(offset: 2)) { try JSONValue(parsing: "[[[]]]", maxDepth: 2) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONParseError.invalidUTF8) { try JSONValue(parsingUTF8: [0x22, 0xFF, 0x22]) }
    }
}
