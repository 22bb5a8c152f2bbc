import NIOCore

/// Splits the inbound bytes into lines and hands complete replies up the pipeline.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply

    private var parser = SMTPReplyParser()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let newline = buffer.withUnsafeReadableBytes { $0.firstIndex(of: UInt8(ascii: "\n")) }
        guard let newline else {
            // Without this bound a server that never sends a line break would make us buffer forever.
            guard buffer.readableBytes <= SMTPReplyParser.maximumLineLength else {
                throw SMTPError.protocolViolation("a reply line is longer than \(SMTPReplyParser.maximumLineLength) bytes")
            }
            return .needMoreData
        }
        guard var lineBytes = buffer.readBytes(length: newline + 1) else { return .needMoreData }
        lineBytes.removeLast()
        // RFC 5321 lines end in CRLF; accept a bare LF from sloppy servers all the same.
        if lineBytes.last == UInt8(ascii: "\r") { lineBytes.removeLast() }
        if let reply = try self.parser.parse(line: String(decoding: lineBytes, as: UTF8.self)) {
            context.fireChannelRead(Self.wrapInboundOut(reply))
        }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
