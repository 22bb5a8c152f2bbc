/// Prepares message content for the DATA phase (RFC 5321 section 4.5.2).
public enum DotStuffing {
    /// Normalizes line endings to CRLF, doubles a leading '.' on every line and appends the terminating `.` line.
    public static func encode(_ content: [UInt8]) -> [UInt8] {
        let cr = UInt8(ascii: "\r")
        let lf = UInt8(ascii: "\n")
        let dot = UInt8(ascii: ".")
        var output: [UInt8] = []
        output.reserveCapacity(content.count + content.count / 64 + 5)
        var atLineStart = true
        var index = 0
        while index < content.count {
            let byte = content[index]
            index += 1
            if byte == cr || byte == lf {
                // A bare CR or LF would let the server see a line end we did not mean; every break becomes CRLF.
                if byte == cr, index < content.count, content[index] == lf { index += 1 }
                output.append(cr)
                output.append(lf)
                atLineStart = true
                continue
            }
            if atLineStart, byte == dot { output.append(dot) }
            output.append(byte)
            atLineStart = false
        }
        if !atLineStart { output.append(contentsOf: [cr, lf]) }
        output.append(contentsOf: [dot, cr, lf])
        return output
    }
}
