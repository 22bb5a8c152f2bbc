/// Where and how to reach the SMTP server that delivers Parley's mail.
public struct SMTPConfiguration: Sendable, Hashable {
    /// How the connection is secured.
    public enum Security: String, Sendable, Hashable {
        /// No TLS at all (a local relay or a test server).
        case plain
        /// Connect in the clear, then upgrade with STARTTLS before anything else is said (port 587).
        case startTLS
        /// TLS from the first byte, also called SMTPS (port 465).
        case implicitTLS
    }

    /// How the server's TLS certificate is checked.
    public enum TLSVerification: Sendable, Hashable {
        /// The system trust store and the host name must both match.
        case full
        /// Accept any certificate (tests and self-signed relays only).
        case none
        /// Trust only the certificate authorities in this PEM file, and check the host name.
        case customCA(pemFile: String)
    }

    /// Host name or IP address of the server.
    public var host: String
    /// TCP port of the server.
    public var port: Int
    /// How the connection is secured.
    public var security: Security
    /// User name for AUTH, or nil to send without authenticating.
    public var username: String?
    /// Password for AUTH.
    public var password: String?
    /// The name this client announces in EHLO.
    public var heloName: String
    /// How long opening the TCP connection may take.
    public var connectTimeout: Duration
    /// How long the server may take to answer any one command.
    public var commandTimeout: Duration
    /// How the server's certificate is checked.
    public var tlsVerification: TLSVerification

    /// Creates a configuration from its parts.
    public init(
        host: String,
        port: Int? = nil,
        security: Security = .plain,
        username: String? = nil,
        password: String? = nil,
        heloName: String = "localhost",
        connectTimeout: Duration = .seconds(10),
        commandTimeout: Duration = .seconds(60),
        tlsVerification: TLSVerification = .full
    ) {
        self.host = host
        self.port = port ?? Self.defaultPort(for: security)
        self.security = security
        self.username = username
        self.password = password
        self.heloName = heloName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.tlsVerification = tlsVerification
    }

    /// The customary port for a kind of security: 25, 587 or 465.
    public static func defaultPort(for security: Security) -> Int {
        switch security {
        case .plain: 25
        case .startTLS: 587
        case .implicitTLS: 465
        }
    }

    /// The user name and password, when both are set.
    public var credentials: SMTPCredentials? {
        guard let username = self.username, let password = self.password else { return nil }
        return SMTPCredentials(username: username, password: password)
    }
}

extension SMTPConfiguration: CustomStringConvertible {
    /// A summary for logs that never contains the password.
    public var description: String {
        let scheme = self.security == .implicitTLS ? "smtps" : "smtp"
        let user = self.username.map { "\($0):***@" } ?? ""
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(scheme)://\(user)\(host):\(self.port) (\(self.security.rawValue))"
    }
}

/// A user name and password for SMTP AUTH.
public struct SMTPCredentials: Sendable, Hashable {
    /// The user name.
    public var username: String
    /// The password.
    public var password: String

    /// Creates credentials.
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}
