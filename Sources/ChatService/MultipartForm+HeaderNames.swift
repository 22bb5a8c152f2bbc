import NIOCore

extension MultipartForm {
    /// Whether the header names of every part are US-ASCII. MultipartKit 4.7 stops the process (an array index out of
    /// range) on a byte of 0x80 or more in a header name instead of throwing, so such a body must never reach it.
    static func headerNamesAreASCII(_ body: ByteBuffer, boundary: String) -> Bool {
        let bytes = Array(body.readableBytesView)
        let delimiter = Array("--\(boundary)".utf8)
        var index = 0
        while index + delimiter.count <= bytes.count {
            guard bytes[index..<index + delimiter.count].elementsEqual(delimiter) else {
                index += 1
                continue
            }
            // Past the rest of the delimiter's line, the part's header lines run to the first empty line.
            var cursor = index + delimiter.count
            while cursor < bytes.count, bytes[cursor] != UInt8(ascii: "\n") { cursor += 1 }
            cursor += 1
            var inName = true
            var lineIsEmpty = true
            while cursor < bytes.count {
                let byte = bytes[cursor]
                cursor += 1
                if byte == UInt8(ascii: "\n") {
                    if lineIsEmpty { break }
                    inName = true
                    lineIsEmpty = true
                } else if byte != UInt8(ascii: "\r") {
                    lineIsEmpty = false
                    if byte == UInt8(ascii: ":") {
                        inName = false
                    } else if inName, byte >= 0x80 {
                        return false
                    }
                }
            }
            index = cursor
        }
        return true
    }
}
