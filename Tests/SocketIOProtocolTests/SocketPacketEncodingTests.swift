import SocketIOProtocol
import Testing

/// Socket.IO packets, byte for byte against the socket.io-protocol README's "Packet encoding" examples.
struct SocketPacketEncodingTests {
    /// Each README example, plus the brief's and the notes' (`420[…]`, `430[…]`), as packet and text.
    static let vectors: [(packet: SocketPacket, text: String)] = [
        (SocketPacket(type: .connect), "0"),
        (SocketPacket(type: .connect, namespace: "/admin", data: #"{"sid":"oSO0OpakMV_3jnilAAAA"}"#), #"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
        (SocketPacket(type: .connectError, data: #"{"message":"Not authorized"}"#), #"4{"message":"Not authorized"}"#),
        (SocketPacket(type: .event, data: #"["foo"]"#), #"2["foo"]"#),
        (SocketPacket(type: .event, namespace: "/admin", data: #"["bar"]"#), #"2/admin,["bar"]"#),
        (SocketPacket(type: .event, ackID: 12, data: #"["foo"]"#), #"212["foo"]"#),
        (SocketPacket(type: .ack, namespace: "/admin", ackID: 13, data: #"["bar"]"#), #"3/admin,13["bar"]"#),
        (SocketPacket(type: .disconnect), "1"),
        (SocketPacket(type: .disconnect, namespace: "/admin"), "1/admin,"),
        (SocketPacket(type: .event, data: #"["hello",1]"#), #"2["hello",1]"#),
        (SocketPacket(type: .event, namespace: "/admin", data: #"["bye"]"#), #"2/admin,["bye"]"#),
        (SocketPacket(type: .ack, ackID: 0, data: #"["bar"]"#), #"30["bar"]"#),
        (SocketPacket(type: .connect, data: #"{"sid":"wZX3oN0bSVIhsaknAAAI"}"#), #"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#),
        (SocketPacket(type: .connectError, data: #"{"message":"unauthorized"}"#), #"4{"message":"unauthorized"}"#),
        (SocketPacket(type: .connect, namespace: "/admin", data: #"{"token":"123"}"#), #"0/admin,{"token":"123"}"#),
        (SocketPacket(type: .connect, namespace: "/admin"), "0/admin,"),
        (SocketPacket(type: .event, namespace: "/admin", ackID: 1, data: #"["tellme"]"#), #"2/admin,1["tellme"]"#),
        (SocketPacket(type: .event, ackID: 0, data: #"["sendMessage",{"chatId":"c1"}]"#), #"20["sendMessage",{"chatId":"c1"}]"#),
        (SocketPacket(type: .ack, ackID: 0, data: #"[{"ok":true}]"#), #"30[{"ok":true}]"#),
        (
            SocketPacket(type: .event, ackID: 456, data: #"["message-with-ack",1,"2",{"3":[false]}]"#),
            #"2456["message-with-ack",1,"2",{"3":[false]}]"#
        ),
        (SocketPacket(type: .ack, ackID: UInt64.max, data: "[]"), "318446744073709551615[]"),
    ]

    @Test("encodes each example byte for byte", arguments: SocketPacketEncodingTests.vectors)
    func encodes(packet: SocketPacket, text: String) {
        #expect(packet.encoded() == text)
    }

    @Test("decodes each example back to its packet", arguments: SocketPacketEncodingTests.vectors)
    func decodes(packet: SocketPacket, text: String) throws {
        #expect(try SocketPacket(decoding: text) == packet)
        #expect(try SocketPacket(decodingUTF8: Array(text.utf8)) == packet)
    }

    @Test func emptyNamespaceIsWrittenAsTheMainOne() {
        #expect(SocketPacket(type: .event, namespace: "", data: "[\"a\"]").encoded() == "2[\"a\"]")
    }

    @Test func connectAcceptedCarriesTheSocketID() {
        #expect(SocketPacket.connectAccepted(sid: "wZX3oN0bSVIhsaknAAAI").encoded() == #"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#)
        #expect(
            SocketPacket.connectAccepted(sid: "-G5j-67EZFp-q59rADQM", namespace: "/admin").encoded() == #"0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}"#
        )
    }

    @Test func connectRefusedIsAnObjectWithAMessage() {
        #expect(SocketPacket.connectRefused(message: "unauthorized").encoded() == #"4{"message":"unauthorized"}"#)
        #expect(
            SocketPacket.connectRefused(message: "Invalid namespace", namespace: "/random").encoded()
                == #"4/random,{"message":"Invalid namespace"}"#
        )
        #expect(
            SocketPacket.connectRefused(message: "say \"hi\"", encodedData: #"{"code":"expired"}"#).encoded()
                == #"4{"message":"say \"hi\"","data":{"code":"expired"}}"#
        )
    }

    @Test func eventIsBuiltFromAlreadyEncodedArguments() {
        let message = #"{"id":"m1","text":"hi"}"#
        #expect(SocketPacket.event("newMessage", encodedArguments: [message]).encoded() == #"2["newMessage",{"id":"m1","text":"hi"}]"#)
        #expect(SocketPacket.event("hey", encodedArguments: [#""Jude""#]).encoded() == #"2["hey","Jude"]"#)
        #expect(SocketPacket.event("ping").encoded() == #"2["ping"]"#)
        #expect(SocketPacket.event("tellme", namespace: "/admin", ackID: 1).encoded() == #"2/admin,1["tellme"]"#)
    }

    @Test func ackAnswersWithItsID() {
        #expect(SocketPacket.ack(0, encodedArguments: [#"{"ok":true}"#]).encoded() == #"30[{"ok":true}]"#)
        #expect(SocketPacket.ack(12, encodedArguments: []).encoded() == "312[]")
        #expect(SocketPacket.ack(13, encodedArguments: [#""bar""#], namespace: "/admin").encoded() == #"3/admin,13["bar"]"#)
    }

    @Test func disconnectHasNoPayload() {
        #expect(SocketPacket.disconnect().encoded() == "1")
        #expect(SocketPacket.disconnect(namespace: "/admin").encoded() == "1/admin,")
    }

    @Test func typeDigitsFollowTheProtocolTable() {
        #expect(SocketPacketType.allCases.map(\.rawValue) == [0, 1, 2, 3, 4])
    }
}
