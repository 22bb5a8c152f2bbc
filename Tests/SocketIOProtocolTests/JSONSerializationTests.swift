import SocketIOProtocol
import Testing

/// Writing JSON: compact, escaped as JSON.stringify does, and readable back.
struct JSONSerializationTests {
    @Test func writesCompactJSONInKeyOrder() {
        let value: JSONValue = ["z": 1, "a": [true, false, nil], "s": "x", "o": [:], "e": []]
        #expect(value.jsonText() == #"{"z":1,"a":[true,false,null],"s":"x","o":{},"e":[]}"#)
    }

    @Test func escapesQuotesBackslashesAndControlCharacters() {
        #expect(JSONText.quoted("a\"b\\c/d") == #""a\"b\\c/d""#)
        #expect(JSONText.quoted("\u{8}\u{C}\n\r\t") == #""\b\f\n\r\t""#)
        #expect(JSONText.quoted("\u{0}\u{1}\u{1E}\u{1F}") == #""\u0000\u0001\u001e\u001f""#)
        #expect(JSONText.quoted("\u{7F}é€😀") == "\"\u{7F}é€😀\"")
    }

    @Test func neverWritesTheRecordSeparatorRaw() {
        let text = JSONValue.object(JSONObject([(key: "\u{1E}", value: .string("a\u{1E}b"))])).jsonText()
        #expect(!text.utf8.contains(0x1E))
    }

    @Test(
        "writes numbers as JavaScript reads them",
        arguments: [
            (0, "0"), (-0.0, "0"), (25000, "25000"), (-7, "-7"), (1.5, "1.5"), (0.1, "0.1"), (1e21, "1e+21"),
            (9_007_199_254_740_991, "9007199254740991"), (1e-7, "1e-07"), (.nan, "null"), (.infinity, "null"), (-.infinity, "null"),
        ] as [(Double, String)]
    )
    func writesNumber(value: Double, text: String) {
        #expect(JSONValue.number(value).jsonText() == text)
    }

    @Test func buildsArraysFromEncodedElements() {
        #expect(JSONText.array([]) == "[]")
        #expect(JSONText.array(["1", #""a""#, "{}"]) == #"[1,"a",{}]"#)
    }

    @Test func readsBackWhatItWrites() throws {
        let value: JSONValue = [
            "text": "line\nbreak \"quoted\" \\ 😀 \u{0}",
            "numbers": [0, -1, 3.25, 1e300, -2.5e-300, 123_456_789_012],
            "nested": ["deeper": [[["x": nil]]]],
        ]
        #expect(try JSONValue(parsing: value.jsonText()) == value)
    }

    @Test func accessorsReturnOnlyTheirOwnKind() {
        let value: JSONValue = ["s": "x", "n": 2, "f": 2.5, "b": true, "a": [1], "o": ["k": 1], "z": nil]
        #expect(value["s"]?.stringValue == "x")
        #expect(value["n"]?.intValue == 2)
        #expect(value["f"]?.intValue == nil)
        #expect(value["f"]?.doubleValue == 2.5)
        #expect(value["b"]?.boolValue == true)
        #expect(value["a"]?.arrayValue == [1])
        #expect(value["o"]?.objectValue == ["k": 1])
        #expect(value["z"]?.isNull == true)
        #expect(value["s"]?.intValue == nil)
        #expect(value["s"]?.boolValue == nil)
        #expect(value["n"]?.stringValue == nil)
        #expect(value["s"]?["k"] == nil)
        #expect(value["s"]?[0] == nil)
    }

    @Test func objectSubscriptSetsReplacesAndRemoves() {
        var object: JSONObject = ["a": 1, "b": 2]
        object["c"] = 3
        object["a"] = "one"
        object["b"] = nil
        object["missing"] = nil
        #expect(object.keys == ["a", "c"])
        #expect(object["a"] == "one")
        #expect(JSONValue.object(object).jsonText() == #"{"a":"one","c":3}"#)
    }

    @Test func objectKeepsTheFirstPositionAndLastValueOfARepeatedKey() {
        let object = JSONObject([(key: "a", value: 1), (key: "b", value: 2), (key: "a", value: 3)])
        #expect(object.keys == ["a", "b"])
        #expect(object["a"] == 3)
    }

    @Test func objectEqualityDependsOnKeyOrder() {
        let ab: JSONObject = ["a": 1, "b": 2]
        let ba: JSONObject = ["b": 2, "a": 1]
        #expect(ab != ba)
        #expect(ab == ["a": 1, "b": 2])
        #expect(Set([ab, ["a": 1, "b": 2]]).count == 1)
    }
}
