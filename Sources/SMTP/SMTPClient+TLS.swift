import NIOCore
import NIOSSL

extension SMTPClient {
    /// Builds the TLS context once, so a missing CA file is reported when the client is made, not at the first mail.
    static func makeTLSContext(verification: SMTPConfiguration.TLSVerification) throws(SMTPError) -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch verification {
        case .full:
            break
        case .none:
            tls.certificateVerification = .none
        case .customCA(let pemFile):
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(pemFile))
            } catch {
                throw SMTPError.tlsFailed("cannot read the CA certificates in \(pemFile): \(error)")
            }
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw SMTPError.tlsFailed("cannot set up TLS: \(error)")
        }
    }

    /// The name sent in SNI and checked against the certificate; nil for an IP address, which NIOSSL then checks itself.
    static func serverHostname(for host: String) -> String? {
        (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }

    /// Puts TLS in front of everything else on a connection that has just been answered 220 to STARTTLS.
    func startTLS(on channel: any Channel) async throws {
        guard let context = self.tlsContext else {
            preconditionFailure("STARTTLS without a TLS context")
        }
        let hostname = Self.serverHostname(for: self.configuration.host)
        // The handler is made on the event loop because it is not Sendable; writes wait in it until the handshake ends.
        try await channel.eventLoop.submit {
            let handler = try NIOSSLClientHandler(context: context, serverHostname: hostname)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
    }
}
