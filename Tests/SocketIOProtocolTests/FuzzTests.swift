import Testing

@testable import SocketIOProtocol

/// Deterministic fuzzing: hostile bytes never crash a decoder, and whatever decodes survives a round trip.
struct FuzzTests {
    /// Valid inputs of every layer, the seeds of the mutations.
    static let corpus: [String] = [
        "0", "1", "1/admin,", "40", "41", "2probe", "3probe", "5", "6", "4hello", "4hello\u{1E}2\u{1E}4world", "4hello\u{1E}bAQIDBA==",
        #"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        #"2["foo"]"#, #"2/admin,["bar"]"#, #"212["foo"]"#, #"3/admin,13["bar"]"#, #"30["bar"]"#, #"0/admin,{"token":"123"}"#,
        #"4{"message":"unauthorized"}"#, #"51-["baz",{"_placeholder":true,"num":0}]"#, #"61-15["bar",{"_placeholder":true,"num":0}]"#,
        #"42["message",1,"2",{"3":[true]}]"#, #"42456["message-with-ack",1,"2",{"3":[false]}]"#, #"["a",{"b":[1.5e3,-0,"\u00e9\ud83d\ude00"]}]"#,
        #"{"k":"v\n\"","n":null,"t":true,"f":false}"#, "bZm9vYmE=",
    ]

    /// Bytes the formats give meaning to, so mutations hit interesting paths more often than random bytes do.
    static let interestingBytes: [UInt8] =
        Array("0123456789/,[]{}\":-+.eEbu\\ =AQ".utf8) + [0x1E, 0x00, 0x0A, 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80, 0xFF]

    @Test func randomBytesNeverCrashAndRoundTrip() {
        var random = SplitMix64(seed: 0x5EED_0001)
        var accepted = 0
        for _ in 0..<20000 {
            let length = Int.random(in: 0...48, using: &random)
            let bytes = (0..<length).map { _ in Self.randomByte(using: &random) }
            accepted += Self.checkEveryDecoder(bytes)
        }
        // Enough inputs must decode for the round-trip half of the test to mean something.
        #expect(accepted > 1000)
    }

    @Test func mutatedValidPacketsNeverCrashAndRoundTrip() {
        var random = SplitMix64(seed: 0x5EED_0002)
        var accepted = 0
        for iteration in 0..<20000 {
            var bytes = Array(Self.corpus[iteration % Self.corpus.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                Self.mutate(&bytes, using: &random)
            }
            accepted += Self.checkEveryDecoder(bytes)
        }
        #expect(accepted > 20000)
    }

    @Test func generatedJSONValuesRoundTrip() throws {
        var random = SplitMix64(seed: 0x5EED_0003)
        for _ in 0..<2000 {
            let value = Self.randomJSON(depth: 0, using: &random)
            #expect(try JSONValue(parsing: value.jsonText()) == value)
        }
    }

    @Test func everyFiniteDoubleRoundTripsExactly() throws {
        var random = SplitMix64(seed: 0x5EED_0004)
        for _ in 0..<5000 {
            let value = Double(bitPattern: random.next())
            guard value.isFinite else { continue }
            let parsed = try JSONValue(parsing: JSONValue.number(value).jsonText())
            #expect(parsed.doubleValue == value)
        }
    }

    @Test func generatedSocketPacketsRoundTrip() throws {
        var random = SplitMix64(seed: 0x5EED_0005)
        let namespaces = ["/", "/admin", "/a/b", "/é😀", "/x y"]
        for _ in 0..<3000 {
            let type = SocketPacketType.allCases.randomElement(using: &random)!
            let namespace = namespaces.randomElement(using: &random)!
            let ackID = Bool.random(using: &random) ? random.next() >> UInt64.random(in: 0...63, using: &random) : nil
            let argument = Self.randomJSON(depth: 1, using: &random).jsonText()
            var packet = SocketPacket(type: type, namespace: namespace)
            switch type {
            case .connect: packet.data = Bool.random(using: &random) ? #"{"token":\#(JSONText.quoted(argument))}"# : nil
            case .disconnect: break
            case .event: (packet.ackID, packet.data) = (ackID, SocketEvent.dataText(name: "e", encodedArguments: [argument]))
            case .ack: (packet.ackID, packet.data) = (ackID ?? 0, JSONText.array([argument]))
            case .connectError: packet.data = #"{"message":\#(JSONText.quoted(argument))}"#
            }
            #expect(try SocketPacket(decoding: packet.encoded()) == packet)
            let engine = EnginePacket.message(packet.encoded())
            #expect(try EnginePayload.decode(EnginePayload.encode([engine, .ping(), engine])) == [engine, .ping(), engine])
        }
    }

    @Test func randomBinaryRoundTripsThroughBase64AndPolling() throws {
        var random = SplitMix64(seed: 0x5EED_0006)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            #expect(Base64.decode(Base64.encode(bytes).utf8) == bytes)
            let packets: [EnginePacket] = [.binaryMessage(bytes), .message("x"), .binaryMessage(bytes.reversed())]
            #expect(try EnginePayload.decode(EnginePayload.encode(packets)) == packets)
        }
    }

    /// Feeds `bytes` to every decoder; each may refuse it, and whatever one accepts must re-encode to the same value.
    /// Returns how many decoders accepted it.
    @discardableResult
    private static func checkEveryDecoder(_ bytes: [UInt8]) -> Int {
        let text = String(decoding: bytes, as: UTF8.self)
        var accepted = 0
        if let packet = try? EnginePacket(textUTF8: bytes) {
            accepted += 1
            #expect((try? EnginePacket(frame: packet.webSocketFrame())) == packet, "\(bytes)")
        }
        if let packets = try? EnginePayload.decode(utf8: bytes) {
            accepted += 1
            #expect((try? EnginePayload.decode(EnginePayload.encode(packets))) == packets, "\(bytes)")
        }
        if let packet = try? SocketPacket(decodingUTF8: bytes) {
            accepted += 1
            #expect((try? SocketPacket(decoding: packet.encoded())) == packet, "\(bytes)")
        }
        if let value = try? JSONValue(parsingUTF8: bytes) {
            accepted += 1
            #expect((try? JSONValue(parsing: value.jsonText())) == value, "\(bytes)")
        }
        if let event = try? SocketEvent(parsing: text) {
            accepted += 1
            #expect((try? SocketEvent(parsing: event.dataText())) == event, "\(bytes)")
        }
        // Decoding the repaired text exercises the String entry points with multi-byte characters everywhere.
        if let packet = try? EnginePacket(text: text) {
            accepted += 1
            #expect((try? EnginePacket(frame: packet.webSocketFrame())) == packet, "\(bytes)")
        }
        if let packet = try? SocketPacket(decoding: text) {
            accepted += 1
            #expect((try? SocketPacket(decoding: packet.encoded())) == packet, "\(bytes)")
        }
        if let decoded = Base64.decode(bytes) {
            accepted += 1
            #expect(Array(Base64.encode(decoded).utf8) == bytes)
        }
        return accepted
    }

    private static func randomByte(using random: inout SplitMix64) -> UInt8 {
        Bool.random(using: &random) ? Self.interestingBytes.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
    }

    /// One random edit: replace, insert, delete, or duplicate a slice.
    private static func mutate(_ bytes: inout [UInt8], using random: inout SplitMix64) {
        let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
        switch Int.random(in: 0..<4, using: &random) {
        case 0 where !bytes.isEmpty:
            bytes[position] = Self.randomByte(using: &random)
        case 1:
            bytes.insert(Self.randomByte(using: &random), at: position)
        case 2 where !bytes.isEmpty:
            bytes.remove(at: position)
        default:
            guard !bytes.isEmpty else { return }
            let end = Int.random(in: position...bytes.count, using: &random)
            bytes.insert(contentsOf: bytes[position..<end], at: Int.random(in: 0...bytes.count, using: &random))
        }
    }

    /// A random JSON value with strings that need escaping and numbers of every size.
    private static func randomJSON(depth: Int, using random: inout SplitMix64) -> JSONValue {
        let pick = Int.random(in: 0..<(depth >= 4 ? 4 : 6), using: &random)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2:
            let value = Double(bitPattern: random.next())
            return .number(value.isFinite ? value : Double(Int.random(in: -1000...1000, using: &random)))
        case 3: return .string(Self.randomString(using: &random))
        case 4:
            return .array((0..<Int.random(in: 0...4, using: &random)).map { _ in Self.randomJSON(depth: depth + 1, using: &random) })
        default:
            let members = (0..<Int.random(in: 0...4, using: &random)).map { index in
                (key: Self.randomString(using: &random) + String(index), value: Self.randomJSON(depth: depth + 1, using: &random))
            }
            return .object(JSONObject(members))
        }
    }

    private static func randomString(using random: inout SplitMix64) -> String {
        let pieces = ["a", "Z", "\"", "\\", "/", "\n", "\u{0}", "\u{1E}", "\u{1F}", "é", "€", "😀", " ", "\u{301}", "\u{FFFF}"]
        return (0..<Int.random(in: 0...6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }
}

/// SplitMix64: a tiny seeded generator, so every run fuzzes the same inputs and a failure reproduces.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var value = self.state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
