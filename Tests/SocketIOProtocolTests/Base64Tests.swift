import Testing

@testable import SocketIOProtocol

/// The small base64 codec used for binary packets in polling payloads.
struct Base64Tests {
    /// RFC 4648 §10 test vectors, plus the Engine.IO README's.
    static let vectors: [(bytes: [UInt8], text: String)] = [
        ([], ""),
        (Array("f".utf8), "Zg=="),
        (Array("fo".utf8), "Zm8="),
        (Array("foo".utf8), "Zm9v"),
        (Array("foob".utf8), "Zm9vYg=="),
        (Array("fooba".utf8), "Zm9vYmE="),
        (Array("foobar".utf8), "Zm9vYmFy"),
        ([1, 2, 3, 4], "AQIDBA=="),
        ([0xFB, 0xFF, 0xBF], "+/+/"),
        ([0, 0, 0], "AAAA"),
    ]

    @Test("encodes the RFC 4648 vectors", arguments: Base64Tests.vectors)
    func encodes(bytes: [UInt8], text: String) {
        #expect(Base64.encode(bytes) == text)
    }

    @Test("decodes the RFC 4648 vectors", arguments: Base64Tests.vectors)
    func decodes(bytes: [UInt8], text: String) {
        #expect(Base64.decode(text.utf8) == bytes)
    }

    @Test func everyByteValueRoundTrips() {
        let bytes = (0...255).map { UInt8($0) }
        for length in 0...bytes.count {
            let slice = Array(bytes.prefix(length))
            #expect(Base64.decode(Base64.encode(slice).utf8) == slice)
        }
    }

    @Test(
        "refuses text that is not canonical padded base64",
        arguments: ["A", "AB", "ABC", "Zg", "Zg=", "Zg===", "====", "A===", "Zh==", "Zm9=", "Zg==Zg==", "Z=g=", "Zm9v\n", "Zm-_", "Zm9v YmFy"]
    )
    func refusesNonCanonical(text: String) {
        #expect(Base64.decode(text.utf8) == nil)
    }

    @Test func refusesNonASCIIBytes() {
        #expect(Base64.decode([0xC3, 0xA9, 0x41, 0x41]) == nil)
        #expect(Base64.decode([0x00, 0x41, 0x41, 0x41]) == nil)
    }
}
