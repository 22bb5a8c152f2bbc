import Foundation
import Metrics
public import ParleyCore
public import ParleyStore
public import SQLKit

/// The user service: email one-time-code login, tokens, profiles, JWKS. Refusals are thrown as ``UserError`` and
/// ``LoginError``.
public struct UserService: Sendable {
    /// The limits of the login flow.
    public struct Settings: Sendable {
        public var codeLifetimeSeconds: Int
        public var resendSeconds: Int
        public var maxCodeAttempts: Int
        public var ipLimit: Int
        public var ipWindowSeconds: Int
        public var verifyIPLimit: Int
        public var verifyIPWindowSeconds: Int
        public var failureWindowSeconds: Int
        public var lockoutBaseSeconds: Int
        public var lockoutMaxSeconds: Int
        public var addressFailureLimit: Int

        public init(configuration: ParleyConfiguration) {
            self.codeLifetimeSeconds = configuration.otpTTLSeconds
            self.resendSeconds = configuration.otpResendSeconds
            self.maxCodeAttempts = configuration.otpMaxAttempts
            self.ipLimit = configuration.loginIPLimit
            self.ipWindowSeconds = configuration.loginIPWindowSeconds
            self.verifyIPLimit = configuration.verifyIPLimit
            self.verifyIPWindowSeconds = configuration.verifyIPWindowSeconds
            self.failureWindowSeconds = configuration.loginFailureWindowSeconds
            self.lockoutBaseSeconds = configuration.loginLockoutBaseSeconds
            self.lockoutMaxSeconds = configuration.loginLockoutMaxSeconds
            self.addressFailureLimit = configuration.loginAddressFailureLimit
        }

        /// How long an email is locked out after its `failures`-th wrong code: not at all for the first
        /// `maxCodeAttempts - 1`, then the base, doubling with every further wrong code up to the maximum.
        func lockoutSeconds(afterFailures failures: Int) -> Int {
            guard failures >= self.maxCodeAttempts else { return 0 }
            return min(self.lockoutBaseSeconds << min(failures - self.maxCodeAttempts, 30), self.lockoutMaxSeconds)
        }

        /// The most wrong codes anyone, from any number of addresses, can have checked for one email within `seconds`:
        /// the guess budget docs/deploy.md states (104 a day with the defaults).
        public func guessBudget(overSeconds seconds: Int = 86400) -> Int {
            var (elapsed, failures) = (0, 0)
            while elapsed <= seconds {
                failures += 1
                elapsed += self.lockoutSeconds(afterFailures: failures)
            }
            return failures
        }
    }

    /// For the transactions that write users together with codes, tokens, rate limits and mails.
    let database: Database
    let users: UserStore
    let tokens: TokenIssuer
    let settings: Settings
    /// Signs avatar URLs (avatars are files of the shared blob store).
    let signer: FileURLSigner
    /// Rung after a mail is queued, so an in-process mail worker sends it at once.
    let mailQueued: Wakeup?
    let metrics = LoginMetrics.shared

    /// Creates the service over `database`.
    public init(database: Database, tokens: TokenIssuer, settings: Settings, signer: FileURLSigner, mailQueued: Wakeup?) {
        self.database = database
        self.users = UserStore(database: database)
        self.tokens = tokens
        self.settings = settings
        self.signer = signer
        self.mailQueued = mailQueued
    }

    /// The JWK set that verifies the access tokens this service signs.
    var jwksJSON: String { self.tokens.key.jwksJSON }

    /// Stores a new code for `email` and queues its mail, in one transaction.
    func requestCode(email: String, clientIP: String, requestID: String, now: Int64 = Timestamp.millis()) async throws {
        let code = Secrets.loginCode()
        let hash = Secrets.codeHash(email: email, code: code, pepper: self.tokens.key.codePepper)
        let refusal = try await self.database.transaction { sql -> LoginError? in
            if let wait = try await RateLimiter.hit(
                bucket: "login-ip:\(IPAddressText.bucket(clientIP))",
                limit: self.settings.ipLimit,
                windowSeconds: self.settings.ipWindowSeconds,
                now: now,
                in: sql
            ) {
                return .addressLimited(retryAfter: wait)
            }
            let expires = now + Int64(self.settings.codeLifetimeSeconds) * 1000
            let windowStart = now - Int64(self.settings.resendSeconds) * 1000
            guard try await TokenStore.storeCode(email: email, hash: hash, expiresAt: expires, now: now, replacingUpTo: windowStart, in: sql) else {
                if let until = try await TokenStore.lockedUntil(email: email, in: sql), until > now {
                    return .tooManyAttempts(retryAfter: Self.seconds(until - now))
                }
                let next = (try await TokenStore.codeCreatedAt(email: email, in: sql) ?? now) + Int64(self.settings.resendSeconds) * 1000
                // A racing request may have stored a code a moment "after" this one's clock reading: never more than the window.
                return .codeSentRecently(retryAfter: min(self.settings.resendSeconds, max(1, Int((next - now + 999) / 1000))))
            }
            let payload = #"{"code":"\#(code)","expiresInMinutes":\#(max(1, self.settings.codeLifetimeSeconds / 60))}"#
            try await MailOutbox.enqueue(
                template: "login_code",
                recipient: email,
                payload: payload,
                requestID: requestID,
                traceParent: ParleyTracing.currentHeader,
                now: now,
                in: sql
            )
            return nil
        }
        // Refused only after the commit: the address's hit counts even when the answer is no.
        if let refusal { throw refusal }
        self.metrics.codesSent.increment()
        self.mailQueued?.ring()
    }

    /// Checks `code` for `email` (single use, limited tries, constant-time comparison) and opens a session, creating the
    /// account on its first sign-in. Wrong codes count against the email across its codes (a lockout that grows) and
    /// against the pair of email and client address (docs/deploy.md, "Login limits", says why).
    func verify(email: String, code: String, clientIP: String, now: Int64 = Timestamp.millis()) async throws -> SessionResponse {
        do {
            return try await self.checkCode(email: email, code: code, clientIP: clientIP, now: now)
        } catch let refusal as LoginError {
            self.metrics.failed(refusal)
            throw refusal
        }
    }

    private func checkCode(email: String, code rawCode: String, clientIP: String, now: Int64) async throws -> SessionResponse {
        let code = rawCode.trimmingCharacters(in: .whitespaces)
        guard code.utf8.count == 6, code.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw LoginError.malformedCode }
        let hash = Secrets.codeHash(email: email, code: code, pepper: self.tokens.key.codePepper)
        let address = IPAddressText.bucket(clientIP)
        let outcome = try await self.database.transaction { sql -> Result<(UserRecord, TokenIssuer.RefreshToken), LoginError> in
            if let wait = try await RateLimiter.hit(
                bucket: "verify-ip:\(address)",
                limit: self.settings.verifyIPLimit,
                windowSeconds: self.settings.verifyIPWindowSeconds,
                now: now,
                in: sql
            ) {
                return .failure(.verifyAddressLimited(retryAfter: wait))
            }
            // An address that has entered its share of wrong codes for this email is not heard for it any more: it can
            // neither guess on nor keep the email locked out.
            let pair = "verify-fail:\(address):\(email)"
            if let wait = try await RateLimiter.wait(
                bucket: pair,
                limit: self.settings.addressFailureLimit,
                windowSeconds: self.settings.failureWindowSeconds,
                now: now,
                in: sql
            ) {
                return .failure(.tooManyAttempts(retryAfter: wait))
            }
            let stored: TokenStore.StoredCode
            switch try await TokenStore.countAttempt(email: email, maxAttempts: self.settings.maxCodeAttempts, now: now, in: sql) {
            case .counted(let code): stored = code
            case .noCode: return .failure(.noCode)
            case .locked(let until): return .failure(.tooManyAttempts(retryAfter: Self.seconds(until - now)))
            case .burnt(let createdAt):
                return .failure(.tooManyAttempts(retryAfter: Self.seconds(createdAt + Int64(self.settings.resendSeconds) * 1000 - now)))
            }
            if stored.expiresAt <= now { return .failure(stored.isUsed ? .noCode : .codeExpired) }
            guard ConstantTime.equals(stored.hash, hash) else {
                let window = Int64(self.settings.failureWindowSeconds) * 1000
                let failures = try await TokenStore.recordFailure(email: email, now: now, forgetBefore: now - window, in: sql)
                let lockout = self.settings.lockoutSeconds(afterFailures: failures)
                if lockout > 0 { try await TokenStore.lock(email: email, until: now + Int64(lockout) * 1000, in: sql) }
                _ = try await RateLimiter.hit(bucket: pair, limit: .max, windowSeconds: self.settings.failureWindowSeconds, now: now, in: sql)
                return .failure(.wrongCode)
            }
            try await TokenStore.markCodeUsed(email: email, now: now, in: sql)
            let user = try await UserStore.findOrCreate(email: email, now: now, in: sql)
            return .success((user, try await self.tokens.newRefreshToken(userID: user.id, family: nil, now: now, in: sql)))
        }
        // Refused only after the commit: the try was counted.
        let (user, refreshToken) = try outcome.get()
        return try await self.session(user: user, refreshToken: refreshToken)
    }

    /// Whole seconds to wait for `millis`, at least one (a `Retry-After` of 0 would invite an immediate retry).
    static func seconds(_ millis: Int64) -> Int {
        max(1, Int((millis + 999) / 1000))
    }

    /// Rotates `refreshToken` into a new session; a rotated token presented again revokes its whole family.
    func refresh(_ refreshToken: String) async throws -> SessionResponse {
        guard (1...512).contains(refreshToken.utf8.count) else { throw LoginError.invalidRefreshToken }
        let now = Timestamp.millis()
        let outcome = try await self.database.transaction { sql -> (TokenIssuer.Rotation, UserRecord?) in
            let rotation = try await self.tokens.rotate(refreshToken, now: now, in: sql)
            guard case .rotated(let userID, _) = rotation else { return (rotation, nil) }
            return (rotation, try await UserStore.find(id: userID, in: sql))
        }
        switch outcome {
        case (.rotated(_, let newToken), let user?):
            return try await self.session(user: user, refreshToken: newToken)
        case (.reused, _):
            throw LoginError.refreshTokenReused
        default:
            throw LoginError.invalidRefreshToken
        }
    }

    /// Revokes the family of `refreshToken`; anything that is not one of ours is ignored.
    func logout(_ refreshToken: String) async throws {
        guard (1...512).contains(refreshToken.utf8.count) else { return }
        try await self.database.transaction { sql in
            try await self.tokens.revoke(refreshToken, now: Timestamp.millis(), in: sql)
        }
    }

    func session(user: UserRecord, refreshToken: TokenIssuer.RefreshToken) async throws -> SessionResponse {
        SessionResponse(
            user: user.user(signer: self.signer),
            accessToken: try await self.tokens.accessToken(for: user.id, sessionID: refreshToken.family),
            refreshToken: refreshToken.token,
            expiresIn: self.tokens.accessTokenLifetime
        )
    }

    /// The signed-in user's own profile, read fresh.
    func profile(of userID: String) async throws -> User {
        guard let user = try await self.users.find(id: userID) else { throw UserError.accountGone }
        return user.user(signer: self.signer)
    }

    /// A change of avatar: removed, or set to a file the user uploaded.
    enum AvatarChange: Sendable, Equatable {
        case remove
        case set(fileID: String)
    }

    /// Renames the user and changes their avatar, in one transaction; returns the profile as it now is.
    func updateProfile(
        of userID: String,
        name rawName: String?,
        avatar: AvatarChange?,
        emailNotifications: Bool? = nil,
        allowGroupAdds: Bool? = nil
    ) async throws -> User {
        let name = try rawName.map(DisplayName.validate)
        let now = Timestamp.millis()
        let user = try await self.database.transaction { sql -> UserRecord? in
            if let name { try await UserStore.updateName(id: userID, name: name, now: now, in: sql) }
            if let emailNotifications {
                try await UserStore.updateEmailNotifications(id: userID, enabled: emailNotifications, now: now, in: sql)
            }
            if let allowGroupAdds { try await UserStore.updateAllowGroupAdds(id: userID, allowed: allowGroupAdds, now: now, in: sql) }
            // The avatar replaced is released: the next sweep of unclaimed uploads erases it.
            let previous = avatar == nil ? nil : try await UserStore.find(id: userID, in: sql)?.avatarFileID
            switch avatar {
            case .remove:
                try await UserStore.updateAvatar(id: userID, fileID: nil, now: now, in: sql)
            case .set(let fileID):
                // Only an image one uploaded oneself can become one's avatar.
                guard Identifier.isValid(fileID), try await FileStore.claimAsAvatar(fileID, by: userID, now: now, in: sql) else {
                    throw UserError.avatarNotFound
                }
                try await UserStore.updateAvatar(id: userID, fileID: fileID, now: now, in: sql)
            case nil:
                break
            }
            if let previous, avatar != .set(fileID: previous) { try await FileStore.releaseAvatar(previous, in: sql) }
            return try await UserStore.find(id: userID, in: sql)
        }
        guard let user else { throw UserError.accountGone }
        return user.user(signer: self.signer)
    }

    /// Turns `userID`'s missed-message mail off (their unsubscribe link); false when there is no such user.
    func unsubscribe(_ userID: String) async throws -> Bool {
        try await self.database.transaction { sql in
            guard try await UserStore.find(id: userID, in: sql) != nil else { return false }
            try await UserStore.updateEmailNotifications(id: userID, enabled: false, now: Timestamp.millis(), in: sql)
            return true
        }
    }

    /// Those of `ids` who turned off being added to groups, read in the caller's transaction: the chat service's
    /// consent rule, on any instance (a private setting, which no profile carries).
    public static func refusingGroupAdds(among ids: [String], in sql: any SQLDatabase) async throws -> Set<String> {
        try await UserStore.refusingGroupAdds(among: ids, in: sql)
    }

    /// The names, addresses and mail settings of those of `ids` that exist: what the missed-message mailer mails with
    /// (in-process, or through `GET /internal/v1/users` when the chat service runs apart).
    public func mailContacts(of ids: [String]) async throws -> [MailContact] {
        try await self.users.find(ids: ids).map {
            MailContact(id: $0.id, name: $0.name, email: $0.email, missedMessageMail: $0.emailNotifications)
        }
    }

    /// What anyone may see of those of `ids` that exist: the look-up other services show members with.
    public func profiles(of ids: [String]) async throws -> [String: PublicUser] {
        Dictionary(try await self.publicProfiles(of: ids).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// What anyone may see of those of `ids` that exist.
    func publicProfiles(of ids: [String]) async throws -> [PublicUser] {
        try await self.users.find(ids: ids).map { $0.publicUser(signer: self.signer) }
    }

    /// What anyone may see of user `id`.
    func publicProfile(of id: String) async throws -> PublicUser {
        guard Identifier.isValid(id), let user = try await self.users.find(id: id) else { throw UserError.userNotFound }
        return user.publicUser(signer: self.signer)
    }

    /// A page of users whose name contains `query`, after `cursor`, and the cursor of the next page if there is one.
    func search(query: String, after cursor: UserCursor?, limit: Int) async throws -> (users: [PublicUser], next: UserCursor?) {
        let records = try await self.users.search(query: query, after: cursor, limit: limit + 1)
        let page = Array(records.prefix(limit))
        let next = records.count > limit ? page.last.map { UserCursor(name: $0.name.lowercased(), id: $0.id) } : nil
        return (page.map { $0.publicUser(signer: self.signer) }, next)
    }
}
