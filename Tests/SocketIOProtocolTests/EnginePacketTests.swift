import Testing

@testable import SocketIOProtocol

/// Engine.IO packets in WebSocket frames, byte for byte against the engine.io-protocol README.
struct EnginePacketTests {
    /// Every text packet of the README with its frame text.
    static let textVectors: [(text: String, packet: EnginePacket)] = [
        ("4hello", .message("hello")),
        ("4", .message("")),
        ("2", .ping()),
        ("3", .pong()),
        ("2probe", .ping(payload: "probe")),
        ("3probe", .pong(payload: "probe")),
        ("1", .close),
        ("5", .upgrade),
        ("6", .noop),
        ("42[\"hello\"]", .message("2[\"hello\"]")),
        ("4€ü😀", .message("€ü😀")),
    ]

    @Test("encodes each README packet to its text frame", arguments: EnginePacketTests.textVectors)
    func encodesTextFrame(text: String, packet: EnginePacket) {
        #expect(packet.webSocketFrame() == .text(text))
        #expect(packet.pollingText() == text)
    }

    @Test("decodes each README text frame to its packet", arguments: EnginePacketTests.textVectors)
    func decodesTextFrame(text: String, packet: EnginePacket) throws {
        #expect(try EnginePacket(text: text) == packet)
        #expect(try EnginePacket(textUTF8: Array(text.utf8)) == packet)
        #expect(try EnginePacket(frame: .text(text)) == packet)
    }

    @Test func openPacketCarriesTheHandshakeJSON() throws {
        let text = #"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#
        let handshake = EngineHandshake(sid: "lv_VI97HAXpY6yYWAAAC", upgrades: ["websocket"], pingTimeout: 5000)
        #expect(EnginePacket.open(handshake).webSocketFrame() == .text(text))
        #expect(try EnginePacket(text: text) == .open(handshake))
    }

    @Test func binaryMessageIsSentAsItIsInABinaryFrame() throws {
        let packet = EnginePacket.binaryMessage([1, 2, 3, 4])
        #expect(packet.webSocketFrame() == .binary([1, 2, 3, 4]))
        #expect(EnginePacket(binary: [1, 2, 3, 4]) == packet)
        #expect(try EnginePacket(frame: .binary([1, 2, 3, 4])) == packet)
        #expect(EnginePacket(binary: []) == .binaryMessage([]))
    }

    @Test func frameBytesAreTheUTF8OrTheBinaryData() {
        #expect(EngineFrame.text("4é").bytes == [0x34, 0xC3, 0xA9])
        #expect(EngineFrame.binary([0, 255]).bytes == [0, 255])
    }

    @Test func binaryMessageIsAMessagePacket() {
        #expect(EnginePacket.binaryMessage([1]).type == .message)
        #expect(EnginePacket.message("x").type == .message)
        #expect(EnginePacket.ping(payload: "probe").type == .ping)
        #expect(EnginePacket.open(EngineHandshake(sid: "s", upgrades: [])).type == .open)
        #expect(EnginePacketType.allCases.map(\.rawValue) == [0, 1, 2, 3, 4, 5, 6])
    }

    @Test func combiningMarkAfterTheTypeDigitStaysInThePayload() throws {
        // "4" + U+0301 is a single Character; the payload must still be the combining mark alone.
        #expect(try EnginePacket(text: "4\u{301}") == .message("\u{301}"))
        #expect(EnginePacket.message("\u{301}").pollingText().utf8.count == 3)
    }

    @Test func socketIOPacketRidesInAMessage() {
        let packet = SocketPacket.event("hey", encodedArguments: [#""Jude""#])
        #expect(EnginePacket.message(packet.encoded()).webSocketFrame() == .text(#"42["hey","Jude"]"#))
    }

    @Test func emptyFrameIsRefused() {
        #expect(throws: EngineDecodingError.emptyPacket) { try EnginePacket(text: "") }
        #expect(throws: EngineDecodingError.emptyPacket) { try EnginePacket(textUTF8: []) }
    }

    @Test("an unknown type byte is refused", arguments: ["7", "9", "a", "b", "bAQIDBA==", "/", " 4", "\u{1E}", "é"])
    func unknownTypeIsRefused(text: String) {
        #expect(throws: EngineDecodingError.invalidPacketType(text.utf8.first!)) { try EnginePacket(text: text) }
    }

    @Test("close, upgrade and noop carry no payload", arguments: [("1x", EnginePacketType.close), ("5probe", .upgrade), ("6 ", .noop)])
    func payloadOnBarePacketIsRefused(text: String, type: EnginePacketType) {
        #expect(throws: EngineDecodingError.unexpectedPayload(type)) { try EnginePacket(text: text) }
    }

    @Test("an open packet needs the handshake JSON", arguments: ["0", "0{}", "0[]", "0{\"sid\":\"x\"}", "0not json"])
    func badHandshakeIsRefused(text: String) {
        #expect(throws: EngineDecodingError.invalidHandshake) { try EnginePacket(text: text) }
    }

    @Test(
        "invalid UTF-8 in a text frame is refused",
        arguments: [[0x34, 0xFF], [0x34, 0xC3], [0xED, 0xA0, 0x80], [0x34, 0xC0, 0x80]] as [[UInt8]]
    )
    func invalidUTF8IsRefused(bytes: [UInt8]) {
        #expect(throws: EngineDecodingError.invalidUTF8) { try EnginePacket(textUTF8: bytes) }
    }
}
