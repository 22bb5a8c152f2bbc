/// A bounds-checked cursor over UTF-8 bytes, shared by the packet and JSON decoders.
///
/// Every read goes through `peek()`, which checks the bounds itself, so hostile input can never make a decoder
/// read outside the buffer, even in release builds where `UnsafeBufferPointer` does not check.
struct ByteReader {
    /// The bytes being read; valid only inside the `withUTF8` closure that produced them.
    let bytes: UnsafeBufferPointer<UInt8>
    /// The offset of the next byte to read.
    var offset: Int

    /// Starts reading `bytes` at `offset`.
    init(_ bytes: UnsafeBufferPointer<UInt8>, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    /// Whether every byte has been read.
    var isAtEnd: Bool { self.offset >= self.bytes.count }

    /// The next byte without consuming it, or nil at the end.
    func peek() -> UInt8? {
        self.offset >= 0 && self.offset < self.bytes.count ? self.bytes[self.offset] : nil
    }

    /// Consumes one byte (no effect at the end).
    mutating func advance() {
        if self.offset < self.bytes.count {
            self.offset += 1
        }
    }

    /// Consumes the next byte when it equals `byte`, and says whether it did.
    mutating func consume(_ byte: UInt8) -> Bool {
        guard self.peek() == byte else { return false }
        self.offset += 1
        return true
    }

    /// The bytes in `start..<end` as a String; callers cut only at ASCII bytes, so the slice is valid UTF-8.
    func string(from start: Int, to end: Int) -> String {
        let lower = max(0, min(start, self.bytes.count))
        let upper = max(lower, min(end, self.bytes.count))
        return String(decoding: UnsafeBufferPointer(rebasing: self.bytes[lower..<upper]), as: UTF8.self)
    }

    /// The bytes from `start` to the end as a String.
    func rest(from start: Int) -> String {
        self.string(from: start, to: self.bytes.count)
    }
}

extension UInt8 {
    /// Whether the byte is an ASCII digit `0`…`9`.
    var isASCIIDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}

extension String {
    /// Runs `body` on the string's contiguous UTF-8 bytes, keeping the closure's typed error.
    func withUTF8Buffer<Result, Failure: Error>(
        _ body: (UnsafeBufferPointer<UInt8>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        // `withUTF8` is `rethrows`, which would widen the error to `any Error`: carry it out in a Result instead.
        var text = self
        let outcome: Swift.Result<Result, Failure> = text.withUTF8 { buffer in
            Swift.Result { () throws(Failure) -> Result in try body(buffer) }
        }
        return try outcome.get()
    }

    /// The string for `bytes` when they are valid UTF-8, nil otherwise.
    static func validatingUTF8(_ bytes: [UInt8]) -> String? {
        String(validating: bytes, as: UTF8.self)
    }
}
