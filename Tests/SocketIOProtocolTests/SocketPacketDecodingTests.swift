import SocketIOProtocol
import Testing

/// The strict Socket.IO decoder: what stock clients send, and every way a packet can be refused.
struct SocketPacketDecodingTests {
    @Test func connectWithAuthFromTheTestSuite() throws {
        #expect(try SocketPacket(decoding: #"0{"token":"123"}"#) == SocketPacket(type: .connect, data: #"{"token":"123"}"#))
        #expect(try SocketPacket(decoding: "0/custom,") == SocketPacket(type: .connect, namespace: "/custom"))
        let custom = SocketPacket(type: .connect, namespace: "/custom", data: #"{"token":"abc"}"#)
        #expect(try SocketPacket(decoding: #"0/custom,{"token":"abc"}"#) == custom)
    }

    @Test func namespaceAtTheEndNeedsNoComma() throws {
        // The reference test suite sends `40/random` and `41/custom` without the comma.
        #expect(try SocketPacket(decoding: "0/random") == SocketPacket(type: .connect, namespace: "/random"))
        #expect(try SocketPacket(decoding: "1/custom") == SocketPacket(type: .disconnect, namespace: "/custom"))
    }

    @Test func explicitMainNamespaceIsTheMainNamespace() throws {
        #expect(try SocketPacket(decoding: #"2/,["a"]"#) == SocketPacket(type: .event, data: #"["a"]"#))
    }

    @Test func ackIDZeroIsARealID() throws {
        #expect(try SocketPacket(decoding: #"20["sendMessage",{}]"#).ackID == 0)
        #expect(try SocketPacket(decoding: #"30[{"ok":true}]"#).ackID == 0)
        #expect(try SocketPacket(decoding: #"2["sendMessage",{}]"#).ackID == nil)
    }

    @Test func largestAckIDIsAccepted() throws {
        #expect(try SocketPacket(decoding: #"218446744073709551615["a"]"#).ackID == UInt64.max)
    }

    @Test func dataIsKeptAsRawText() throws {
        let data = #"["message",1,"2",{"3":[true]}, "é😀" ]"#
        #expect(try SocketPacket(decoding: "2" + data).data == data)
    }

    @Test func connectErrorMayBeAPlainString() throws {
        #expect(try SocketPacket(decoding: #"4"Not authorized""#).data == #""Not authorized""#)
    }

    @Test func emptyPacketIsRefused() {
        #expect(throws: SocketDecodingError.emptyPacket) { try SocketPacket(decoding: "") }
    }

    @Test("an unknown type byte is refused", arguments: ["7", "9[]", "a", "abc", "{}", "[\"x\"]", " 2[]", "é", "-1"])
    func unknownTypeIsRefused(text: String) {
        #expect(throws: SocketDecodingError.invalidPacketType(text.utf8.first!)) { try SocketPacket(decoding: text) }
    }

    @Test(
        "binary packets are refused with their own error",
        arguments: [
            #"51-["baz",{"_placeholder":true,"num":0}]"#,
            #"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            #"61-15["bar",{"_placeholder":true,"num":0}]"#,
            #"61-/admin,1[{"_placeholder":true,"num":0}]"#,
            "50-[]",
            "599999999999999999999999-",
        ]
    )
    func binaryPacketsAreRefused(text: String) {
        #expect(throws: SocketDecodingError.binaryPacketsNotSupported) { try SocketPacket(decoding: text) }
    }

    @Test("a binary packet with a bad attachment count is refused", arguments: ["5", "6", "5-", "51", #"51["a"]"#, "5x-", "6/admin,1-"])
    func badAttachmentCountIsRefused(text: String) {
        #expect(throws: SocketDecodingError.invalidAttachmentCount) { try SocketPacket(decoding: text) }
    }

    @Test("a namespace running into the data is refused", arguments: [#"2/admin["bye"]"#, #"0/admin{"token":"1"}"#, #"4/x"m""#, #"2/admin12["a"]"#])
    func missingCommaIsRefused(text: String) {
        #expect(throws: SocketDecodingError.missingNamespaceSeparator) { try SocketPacket(decoding: text) }
    }

    @Test(
        "an ack id beyond 64 bits is refused",
        arguments: [#"218446744073709551616["a"]"#, "399999999999999999999999[]", "2/admin,18446744073709551620[\"a\"]"]
    )
    func overflowingAckIDIsRefused(text: String) {
        #expect(throws: SocketDecodingError.ackIDOverflow) { try SocketPacket(decoding: text) }
    }

    @Test(
        "an ack id on a type that cannot carry one is refused",
        arguments: [("012{}", SocketPacketType.connect), ("11", .disconnect), ("1/admin,7", .disconnect), (#"41{"message":"x"}"#, .connectError)]
    )
    func unexpectedAckIDIsRefused(text: String, type: SocketPacketType) {
        #expect(throws: SocketDecodingError.unexpectedAckID(type)) { try SocketPacket(decoding: text) }
    }

    @Test("an ACK without an id is refused", arguments: [#"3["bar"]"#, "3/admin,[]", "3"])
    func ackWithoutIDIsRefused(text: String) {
        #expect(throws: SocketDecodingError.missingAckID) { try SocketPacket(decoding: text) }
    }

    @Test(
        "EVENT and ACK need data",
        arguments: [("2", SocketPacketType.event), ("212", .event), ("2/admin,", .event), ("3/admin,13", .ack), ("30", .ack)]
    )
    func missingDataIsRefused(text: String, type: SocketPacketType) {
        #expect(throws: SocketDecodingError.missingData(type)) { try SocketPacket(decoding: text) }
    }

    @Test("DISCONNECT carries no data", arguments: ["1{}", "1/admin,{}", "1[]", "1x"])
    func disconnectWithDataIsRefused(text: String) {
        #expect(throws: SocketDecodingError.unexpectedData(.disconnect)) { try SocketPacket(decoding: text) }
    }

    @Test(
        "data of the wrong shape is refused",
        arguments: [
            ("2{}", SocketPacketType.event), ("2abc[\"message\"]", .event), ("2[", .event), ("2]", .event), ("2 [\"a\"]", .event),
            ("2[\"a\"] ", .event), ("2\"a\"", .event), ("2null", .event),
            ("3/admin,13{}", .ack), ("31x", .ack),
            ("0[]", .connect), ("0{", .connect), ("0x", .connect), ("0/admin,[]", .connect),
            ("4[]", .connectError), ("4\"", .connectError), ("4x", .connectError),
        ]
    )
    func wrongShapeIsRefused(text: String, type: SocketPacketType) {
        #expect(throws: SocketDecodingError.invalidData(type)) { try SocketPacket(decoding: text) }
    }

    @Test("invalid UTF-8 is refused", arguments: [[0x32, 0x5B, 0xFF, 0x5D], [0x30, 0xC0], [0xFE]] as [[UInt8]])
    func invalidUTF8IsRefused(bytes: [UInt8]) {
        #expect(throws: SocketDecodingError.invalidUTF8) { try SocketPacket(decodingUTF8: bytes) }
    }

    @Test func engineMessageFromTheTestSuiteWithAnInvalidSocketPacket() throws {
        // The reference test suite sends `4abc`: a valid Engine.IO message whose Socket.IO packet is invalid.
        let engine = try EnginePacket(text: "4abc")
        guard case .message(let text) = engine else {
            Issue.record("expected a message, got \(engine)")
            return
        }
        #expect(throws: SocketDecodingError.invalidPacketType(UInt8(ascii: "a"))) { try SocketPacket(decoding: text) }
    }
}
