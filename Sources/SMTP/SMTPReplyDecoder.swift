import NIOCore

/// A reply as it came off the wire, with whether more bytes had already arrived behind it.
struct ReceivedReply: Sendable {
    /// The reply.
    var reply: SMTPReply
    /// True when bytes followed the reply in the same read; after a STARTTLS 220 that is an injection attempt.
    var isFollowedByData: Bool
}

/// Splits the inbound bytes into lines and hands complete replies up the pipeline.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = ReceivedReply

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
            let received = ReceivedReply(reply: reply, isFollowedByData: buffer.readableBytes > 0)
            context.fireChannelRead(Self.wrapInboundOut(received))
        }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
