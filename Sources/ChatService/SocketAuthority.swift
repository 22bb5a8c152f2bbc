import Foundation
import HTTPTypes
import Logging
import ParleyCore
import ParleyStore
import SocketIOProtocol
import SocketIOServer
import Synchronization

/// Keeps every socket to the authority of the access token it was admitted (or last renewed) with, and no longer.
///
/// - A socket whose token has expired may send only `auth` (with a fresh token of the same user); `grace` after expiry,
///   if it has not renewed, it gets `sessionEnded` `token_expired` and is closed.
/// - When a login session ends (logout, a refresh family revoked by reuse detection), the user service records it in
///   ``EndedSessions``; every chat instance reads the endings every `checkInterval` and closes that session's sockets with
///   `sessionEnded` `logged_out` or `revoked`. A token of an ended session is refused on CONNECT and on `auth`.
final class SocketAuthority: Sendable {
    private struct Entry {
        let socket: SocketIOSocket
        var sessionID: String?
        var expiresAt: Date
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let verifier: any AccessTokenVerifying
    private let endedSessions: EndedSessions
    private let grace: Duration
    private let checkInterval: Duration
    /// How long an ending is kept: past it, no access token of that session is valid any more.
    private let sessionMemory: Duration
    private let logger: Logger

    init(verifier: any AccessTokenVerifying, endedSessions: EndedSessions, settings: RealtimeSettings, logger: Logger) {
        self.verifier = verifier
        self.endedSessions = endedSessions
        self.grace = settings.tokenGrace
        self.checkInterval = settings.authorityCheckInterval
        self.sessionMemory = settings.sessionMemory
        self.logger = logger
    }

    /// The token a CONNECT carries, verified, when its session has not ended; nil to refuse the socket.
    func admit(token: String) async -> VerifiedAccessToken? {
        guard let verified = try? await self.verifier.verify(token: token) else { return nil }
        guard let sessionID = verified.sessionID else { return verified }
        do {
            return try await self.endedSessions.ending(of: sessionID) == nil ? verified : nil
        } catch {
            self.logger.warning("cannot check whether a session ended; refusing the socket", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Starts watching `socket`, admitted with `token`.
    func connected(_ socket: SocketIOSocket, token: VerifiedAccessToken) {
        self.entries.withLock { $0[socket.id] = Entry(socket: socket, sessionID: token.sessionID, expiresAt: token.expiresAt) }
    }

    /// Stops watching the socket `socketID`.
    func disconnected(_ socketID: String) {
        _ = self.entries.withLock { $0.removeValue(forKey: socketID) }
    }

    /// Whether the token of socket `socketID` has expired (it may then only renew).
    func hasExpired(_ socketID: String, now: Date = Date()) -> Bool {
        self.entries.withLock { $0[socketID].map { $0.expiresAt <= now } ?? false }
    }

    /// Renews the authority of socket `socketID` of `userID` with `token`: a valid token of the same user whose session
    /// has not ended. Returns its expiry.
    func renew(_ socketID: String, userID: String, token: String) async throws -> Date {
        let verified = try await self.verifier.verify(token: token)
        guard verified.userID == userID else {
            throw APIError(.forbidden, code: "wrong_user", message: "The token is another user's; a socket keeps its user.")
        }
        if let sessionID = verified.sessionID, try await self.endedSessions.ending(of: sessionID) != nil {
            throw APIError.unauthorized("The session of this token has ended.", code: "session_ended")
        }
        self.entries.withLock { entries in
            entries[socketID]?.sessionID = verified.sessionID
            entries[socketID]?.expiresAt = verified.expiresAt
        }
        return verified.expiresAt
    }

    /// Every `checkInterval` until cancelled: closes the sockets whose token expired `grace` ago, and those of sessions
    /// that ended; now and then forgets endings too old to matter.
    func run() async {
        var lastCheck = Timestamp.millis()
        var lastPrune = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: self.checkInterval)
            guard !Task.isCancelled else { return }
            self.endExpired(now: Date().addingTimeInterval(-self.grace.seconds))
            let started = Timestamp.millis()
            do {
                // A margin for transactions that committed after the time they recorded.
                let endings = try await self.endedSessions.endings(since: lastCheck - 5_000)
                lastCheck = started
                self.end(endings)
            } catch {
                self.logger.warning("cannot read ended sessions", metadata: ["error": "\(error)"])
            }
            if lastPrune.duration(to: .now) > .seconds(600) {
                lastPrune = .now
                try? await self.endedSessions.prune(before: started - Int64(self.sessionMemory.seconds * 1000))
            }
        }
    }

    /// Closes the sockets whose token expired before `cutoff`.
    func endExpired(now cutoff: Date) {
        let expired = self.entries.withLock { entries in
            entries.values.filter { $0.expiresAt <= cutoff }.map(\.socket)
        }
        for socket in expired {
            self.end(socket, reason: "token_expired")
        }
    }

    /// Closes the sockets of the sessions in `endings`.
    func end(_ endings: [EndedSessions.Ending]) {
        guard !endings.isEmpty else { return }
        let reasons = Dictionary(endings.map { ($0.sessionID, $0.reason) }, uniquingKeysWith: { first, _ in first })
        let ended = self.entries.withLock { entries in
            entries.values.compactMap { entry in entry.sessionID.flatMap { reasons[$0] }.map { (entry.socket, $0) } }
        }
        for (socket, reason) in ended {
            self.end(socket, reason: reason.rawValue)
        }
    }

    private func end(_ socket: SocketIOSocket, reason: String) {
        self.disconnected(socket.id)
        self.logger.info("socket's authority ended", metadata: ["userId": .string(socket.userID), "reason": .string(reason)])
        socket.emit(EncodedEvent(name: "sessionEnded", encodedArguments: [#"{"reason":"# + JSONText.quote(reason) + "}"]))
        socket.disconnect()
    }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    fileprivate var seconds: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}
