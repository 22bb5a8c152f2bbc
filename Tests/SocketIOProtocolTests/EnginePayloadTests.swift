import Testing

@testable import SocketIOProtocol

/// HTTP long-polling payloads, against the engine.io-protocol and socket.io-protocol READMEs.
struct EnginePayloadTests {
    static let vectors: [(body: String, packets: [EnginePacket])] = [
        ("4hello\u{1E}2\u{1E}4world", [.message("hello"), .ping(), .message("world")]),
        ("4hello\u{1E}bAQIDBA==", [.message("hello"), .binaryMessage([1, 2, 3, 4])]),
        ("42[\"hello\"]\u{1E}42[\"world\"]", [.message("2[\"hello\"]"), .message("2[\"world\"]")]),
        ("6", [.noop]),
        ("2", [.ping()]),
        ("b", [.binaryMessage([])]),
        ("4\u{1E}4", [.message(""), .message("")]),
        ("40{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}", [.message("0{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}")]),
    ]

    @Test("encodes the README payloads", arguments: EnginePayloadTests.vectors)
    func encodesPayload(body: String, packets: [EnginePacket]) {
        #expect(EnginePayload.encode(packets) == body)
    }

    @Test("decodes the README payloads", arguments: EnginePayloadTests.vectors)
    func decodesPayload(body: String, packets: [EnginePacket]) throws {
        #expect(try EnginePayload.decode(body) == packets)
        #expect(try EnginePayload.decode(utf8: Array(body.utf8)) == packets)
    }

    @Test func openPacketBodyMatchesTheSampleSession() throws {
        let body = #"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#
        let handshake = EngineHandshake(sid: "lv_VI97HAXpY6yYWAAAC", upgrades: ["websocket"], pingTimeout: 5000)
        #expect(EnginePayload.encode([.open(handshake)]) == body)
        #expect(try EnginePayload.decode(body) == [.open(handshake)])
    }

    @Test func binaryPacketInPollingIsBase64() {
        #expect(EnginePacket.binaryMessage([1, 2, 3, 4]).pollingText() == "bAQIDBA==")
    }

    @Test func emptyListEncodesToAnEmptyBody() {
        #expect(EnginePayload.encode([]) == "")
    }

    @Test("an empty record is refused", arguments: ["", "\u{1E}", "4a\u{1E}", "\u{1E}4a", "4a\u{1E}\u{1E}4b"])
    func emptyRecordIsRefused(body: String) {
        #expect(throws: EngineDecodingError.emptyPacket) { try EnginePayload.decode(body) }
    }

    @Test("bad base64 is refused", arguments: ["bA", "bAQIDBA=", "bAQIDBA", "b====", "bZh==", "bAQ=DBA==", "b!!!!", "4ok\u{1E}bZm9=", "b-_-_"])
    func badBase64IsRefused(body: String) {
        #expect(throws: EngineDecodingError.invalidBase64) { try EnginePayload.decode(body) }
    }

    @Test func oneBadRecordFailsTheWholeBody() {
        #expect(throws: EngineDecodingError.invalidPacketType(UInt8(ascii: "x"))) { try EnginePayload.decode("4a\u{1E}x\u{1E}4b") }
        #expect(throws: EngineDecodingError.unexpectedPayload(.noop)) { try EnginePayload.decode("2\u{1E}6x") }
    }

    @Test func invalidUTF8BodyIsRefused() {
        #expect(throws: EngineDecodingError.invalidUTF8) { try EnginePayload.decode(utf8: [0x34, 0x61, 0x1E, 0x34, 0xFE]) }
    }

    @Test func multiByteCharactersAroundTheSeparatorSurvive() throws {
        let packets: [EnginePacket] = [.message("€"), .message("😀"), .binaryMessage([0xE2, 0x82])]
        let body = EnginePayload.encode(packets)
        #expect(Array(body.utf8) == Array("4€\u{1E}4😀\u{1E}b4oI=".utf8))
        #expect(try EnginePayload.decode(body) == packets)
    }
}
