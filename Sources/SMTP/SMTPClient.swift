public import NIOCore
public import NIOPosix
import NIOSSL

/// Delivers mail to one SMTP server over SwiftNIO, one connection per message.
public struct SMTPClient: Sendable {
    /// Where and how the server is reached.
    public let configuration: SMTPConfiguration
    private let eventLoopGroup: any EventLoopGroup
    let tlsContext: NIOSSLContext?

    /// Creates a client; throws when the TLS setup (e.g. the CA file) is unusable.
    public init(
        configuration: SMTPConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(SMTPError) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.tlsContext = configuration.security == .plain ? nil : try Self.makeTLSContext(verification: configuration.tlsVerification)
    }

    /// Sends a message to its To recipients; throws `SMTPError` when the server did not accept it.
    public func send(_ message: MailMessage) async throws(SMTPError) {
        guard !message.to.isEmpty else {
            throw SMTPError.invalidAddress("the message has no recipients")
        }
        try await self.send(content: message.rendered(), envelope: message.envelope)
    }

    /// Sends an already rendered RFC 5322 message with an explicit envelope.
    public func send(content: [UInt8], envelope: SMTPEnvelope) async throws(SMTPError) {
        var dialogue = SMTPDialogue(
            heloName: self.configuration.heloName,
            requiresStartTLS: self.configuration.security == .startTLS,
            credentials: self.configuration.credentials,
            envelope: envelope,
            content: content
        )
        let channel: NIOAsyncChannel<ReceivedReply, ByteBuffer>
        do {
            channel = try await self.connect()
        } catch {
            throw self.connectionError(error)
        }
        do {
            try await channel.executeThenClose { inbound, outbound in
                try await self.converse(&dialogue, channel: channel.channel, inbound: inbound, outbound: outbound)
            }
        } catch {
            // Once the server took the message, a failing QUIT or close loses nothing and must not cause a resend.
            if dialogue.isMessageAccepted { return }
            throw Self.dialogueError(error, stage: dialogue.stage)
        }
    }

    private func connect() async throws -> NIOAsyncChannel<ReceivedReply, ByteBuffer> {
        let implicitTLS = self.configuration.security == .implicitTLS ? self.tlsContext : nil
        let hostname = Self.serverHostname(for: self.configuration.host)
        return try await ClientBootstrap(group: self.eventLoopGroup)
            .connectTimeout(TimeAmount(self.configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: self.configuration.host, port: self.configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let implicitTLS {
                        try pipeline.addHandler(NIOSSLClientHandler(context: implicitTLS, serverHostname: hostname))
                    }
                    try pipeline.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    return try NIOAsyncChannel<ReceivedReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Drives the dialogue: read a reply, do what it says, until it says close.
    private func converse(
        _ dialogue: inout SMTPDialogue,
        channel: any Channel,
        inbound: NIOAsyncChannelInboundStream<ReceivedReply>,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        var replies = inbound.makeAsyncIterator()
        while true {
            let received = try await self.nextReply(from: &replies, channel: channel, stage: dialogue.stage)
            var action: SMTPAction
            do {
                action = try dialogue.receive(received.reply)
            } catch {
                // Leave politely after a refusal; the server may already be gone, so a failed write does not matter.
                if case .rejected = error {
                    try? await outbound.write(ByteBuffer(string: SMTPCommand.quit.line))
                }
                throw error
            }
            if action == .startTLS {
                // Plain text behind the 220 would be read as if it came through TLS (the CVE-2011-0411 kind of injection).
                guard !received.isFollowedByData else {
                    throw SMTPError.protocolViolation("the server sent more data right after accepting STARTTLS")
                }
                try await self.startTLS(on: channel)
                action = dialogue.tlsEstablished()
            }
            switch action {
            case .send(let command):
                try await outbound.write(ByteBuffer(string: command.line))
            case .sendContent(let bytes):
                try await outbound.write(ByteBuffer(bytes: bytes))
            case .close:
                return
            case .startTLS:
                preconditionFailure("the dialogue asked for TLS twice in a row")
            }
        }
    }

    /// Waits for the next reply, failing the stream with `.timedOut` if the server is silent for too long.
    private func nextReply(
        from replies: inout NIOAsyncChannelInboundStream<ReceivedReply>.AsyncIterator,
        channel: any Channel,
        stage: SMTPStage
    ) async throws -> ReceivedReply {
        let timeout = channel.eventLoop.scheduleTask(in: TimeAmount(self.configuration.commandTimeout)) {
            channel.pipeline.fireErrorCaught(SMTPError.timedOut(stage))
        }
        defer { timeout.cancel() }
        guard let reply = try await replies.next() else {
            throw SMTPError.connectionClosed(stage)
        }
        return reply
    }

    private func connectionError(_ error: any Error) -> SMTPError {
        let address = "\(self.configuration.host):\(self.configuration.port)"
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return .connectionFailed("\(address): \(first.error)")
        }
        if let error = error as? ChannelError, error == .connectTimeout(TimeAmount(self.configuration.connectTimeout)) {
            return .connectionFailed("\(address): no connection within \(self.configuration.connectTimeout)")
        }
        return .connectionFailed("\(address): \(error)")
    }

    private static func dialogueError(_ error: any Error, stage: SMTPStage) -> SMTPError {
        switch error {
        case let error as SMTPError: error
        case let error as NIOSSLError: .tlsFailed("\(error)")
        case let error as BoringSSLError: .tlsFailed("\(error)")
        case let error as NIOSSLExtraError: .tlsFailed("\(error)")
        default: .connectionClosed(stage)
        }
    }
}
