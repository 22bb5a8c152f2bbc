/// Which part of Parley one process runs.
public enum ServiceRole: String, Sendable, CaseIterable {
    /// Everything in one process: the user, chat and mail services and the web app.
    case all
    case user
    case chat
    case mail

    /// The port a role listens on unless `PARLEY_PORT` says otherwise.
    public var defaultPort: Int {
        switch self {
        case .all: 3000
        case .user: 3001
        case .chat: 3002
        case .mail: 3003
        }
    }

    var runsUserService: Bool { self == .all || self == .user }
    var runsMailService: Bool { self == .all || self == .mail }
    var runsChatService: Bool { self == .all || self == .chat }
}
