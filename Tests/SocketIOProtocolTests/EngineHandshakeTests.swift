import SocketIOProtocol
import Testing

/// The `open` packet's JSON payload.
struct EngineHandshakeTests {
    @Test func rendersTheContractHandshakeExactly() {
        let handshake = EngineHandshake(sid: "lv_VI97HAXpY6yYWAAAC", upgrades: ["websocket"])
        let expected = #"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        #expect(handshake.jsonText() == expected)
    }

    @Test func webSocketSessionOffersNoUpgrade() {
        let handshake = EngineHandshake(sid: "abc", upgrades: [], pingInterval: 300, pingTimeout: 200, maxPayload: 1_000_000)
        #expect(handshake.jsonText() == #"{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#)
    }

    @Test func escapesTheSessionID() {
        let handshake = EngineHandshake(sid: "a\"b\\c\u{1E}\n", upgrades: ["websocket"])
        #expect(handshake.jsonText().hasPrefix(#"{"sid":"a\"b\\c\u001e\n","#))
    }

    @Test func readsBackWhatItWrites() throws {
        let handshake = EngineHandshake(sid: "é\"😀", upgrades: ["websocket", "webtransport"], pingInterval: 1, pingTimeout: 2, maxPayload: 3)
        #expect(try EngineHandshake(json: handshake.jsonText()) == handshake)
    }

    @Test func ignoresUnknownKeysAndKeyOrder() throws {
        let json = #"{"maxPayload":1e6,"extra":[1],"pingTimeout":20000,"pingInterval":25000,"upgrades":[],"sid":"s"}"#
        #expect(try EngineHandshake(json: json) == EngineHandshake(sid: "s", upgrades: []))
    }

    @Test(
        "refuses a handshake with a missing or mistyped field",
        arguments: [
            #"{"upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":1}"#,
            #"{"sid":1,"upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":1}"#,
            #"{"sid":"s","upgrades":"websocket","pingInterval":1,"pingTimeout":1,"maxPayload":1}"#,
            #"{"sid":"s","upgrades":[1],"pingInterval":1,"pingTimeout":1,"maxPayload":1}"#,
            #"{"sid":"s","upgrades":[],"pingInterval":1.5,"pingTimeout":1,"maxPayload":1}"#,
            #"{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":"1","maxPayload":1}"#,
            #"{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":1e300}"#,
            #"{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":1}"#,
            #"["sid"]"#,
            "",
            "{",
        ]
    )
    func refusesBadHandshake(json: String) {
        #expect(throws: EngineDecodingError.invalidHandshake) { try EngineHandshake(json: json) }
    }
}
