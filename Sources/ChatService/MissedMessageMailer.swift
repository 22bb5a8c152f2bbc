import Foundation
public import Logging
public import ParleyCore
public import ParleyStore
import SQLKit
public import ServiceLifecycle

/// Mails people what they missed: a member with unread direct messages or mentions older than `after`, and no socket
/// connected, gets one mail listing them, at most one per `interval`, through the mail outbox.
///
/// Every chat instance runs one. Whoever is owed a mail is marked in the transaction that stores the message (the
/// `missed_mail` table); a pass reads the marks that are due, and takes each user in a transaction that locks their row,
/// reads their unread messages and queues the mail: two instances never mail the same user for the same period, and a
/// message stored meanwhile is either in the mail or still marked.
public final class MissedMessageMailer: Service {
    /// The timings and addresses.
    public struct Settings: Sendable {
        /// How old an unread message must be before it is mailed.
        public var after: Duration
        /// The least time between two mails to one person.
        public var interval: Duration
        /// The web app's address (links to chats) and where the unsubscribe route answers.
        public var appURL: String

        public init(after: Duration, interval: Duration, appURL: String) {
            self.after = after
            self.interval = interval
            self.appURL = appURL
        }

        /// How often a pass runs: a quarter of `after`, between 250 ms and 30 s.
        var passInterval: Duration {
            min(max(self.after / 4, .milliseconds(250)), .seconds(30))
        }
    }

    let store: ChatStore
    let addressBook: any MailAddressBook
    let presence: any PresenceRegistry
    let links: UnsubscribeLinks
    let settings: Settings
    let mailQueued: Wakeup?
    let logger: Logger

    /// The most users one pass takes, and the most unread messages read for one user.
    static let usersPerPass = 100
    static let unreadRead = 200

    /// A mailer reading the chats of `database`.
    public init(
        database: Database,
        addressBook: any MailAddressBook,
        presence: any PresenceRegistry,
        links: UnsubscribeLinks,
        settings: Settings,
        mailQueued: Wakeup?,
        logger: Logger
    ) {
        self.store = ChatStore(database: database)
        self.addressBook = addressBook
        self.presence = presence
        self.links = links
        self.settings = settings
        self.mailQueued = mailQueued
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    // A full pass means more may be due: go again at once.
                    if try await self.pass(now: Timestamp.millis()) == Self.usersPerPass { continue }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("missed-message pass failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.settings.passInterval)
            }
        }
    }

    /// One pass at `now`: takes the users due, mails those offline; returns how many users were due.
    @discardableResult
    public func pass(now: Int64) async throws -> Int {
        let cutoff = now - Self.millis(self.settings.after)
        let sentBefore = now - Self.millis(self.settings.interval) + 1
        let due = try await self.store.missedMailDue(cutoff: cutoff, sentBefore: sentBefore, limit: Self.usersPerPass)
        guard !due.isEmpty else { return 0 }
        // Someone with a socket connected sees their messages there: they stay due until they go or read.
        let online = try await self.presence.online(among: due.map(\.userID))
        var mailed = 0
        for user in due where !online.contains(user.userID) {
            // Each mail continues the trace of the send that made it owed (a new trace when that send had none): the
            // mail service's delivery (through the outbox's `traceparent`) is its child, and their log lines carry it.
            let queued = try await ParleyTracing.producing("missed-message mail", parent: user.trace) {
                guard try await self.mail(user, now: now, cutoff: cutoff, sentBefore: sentBefore) else { return false }
                self.logger.info("missed-message mail queued")
                return true
            }
            if queued { mailed += 1 }
        }
        if mailed > 0 { self.mailQueued?.ring() }
        return due.count
    }

    /// Mails `user` what is unread, unless another instance takes them first; returns whether a mail was queued.
    func mail(_ user: ChatStore.MissedMailDue, now: Int64, cutoff: Int64, sentBefore: Int64) async throws -> Bool {
        // The recipient and the names are read from the user service before the transaction, in this pass's trace; a
        // sender not named yet (a message stored since the names were read) sends it round again.
        let recipient = try await self.addressBook.mailContacts(of: [user.userID])[user.userID]
        var names: [String: String] = [:]
        // Read here: the transaction's closure may run on the database writer's task, outside this one's trace.
        let traceParent = ParleyTracing.currentHeader
        for _ in 0..<3 {
            let unread = try await self.store.unreadForMail(of: user.userID, limit: Self.unreadRead)
            try await self.name(Set(unread.flatMap { [$0.senderID] + MessageText.mentionCandidates(in: $0.text) }), into: &names)
            let outcome = try await self.store.database.transaction { sql -> Outcome in
                guard try await ChatStore.takeMissedMail(user, sentBefore: sentBefore, in: sql) else { return .taken }
                let unread = try await ChatStore.unreadForMail(of: user.userID, limit: Self.unreadRead, in: sql)
                guard unread.allSatisfy({ names[$0.senderID] != nil }) else { return .unnamed }
                let owed = unread.filter { $0.createdAt <= cutoff }
                let stillPending = unread.first { $0.createdAt > cutoff }?.createdAt
                guard !owed.isEmpty, let recipient, recipient.missedMessageMail else {
                    // Read meanwhile, or mail is off: nothing is sent, and what was owed is settled.
                    try await ChatStore.recordMissedMail(of: user.userID, dealtWith: owed, stillPendingSince: stillPending, sentAt: nil, in: sql)
                    return .settled
                }
                let mail = self.compose(for: user.userID, owed: owed, names: names)
                try await ChatStore.recordMissedMail(of: user.userID, dealtWith: owed, stillPendingSince: stillPending, sentAt: now, in: sql)
                try await MailOutbox.enqueue(
                    template: MissedMessagesMail.template,
                    recipient: recipient.email,
                    payload: String(decoding: try JSONEncoder().encode(mail), as: UTF8.self),
                    requestID: nil,
                    traceParent: traceParent,
                    now: now,
                    in: sql
                )
                return .queued
            }
            switch outcome {
            case .queued: return true
            case .taken, .settled: return false
            case .unnamed: continue
            }
        }
        return false
    }

    enum Outcome: Sendable {
        case queued
        case settled
        case taken
        case unnamed
    }

    /// Adds the names of `ids` not named yet; someone who no longer exists is "Someone".
    func name(_ ids: Set<String>, into names: inout [String: String]) async throws {
        let missing = ids.filter { names[$0] == nil }
        guard !missing.isEmpty else { return }
        let found = try await self.addressBook.mailContacts(of: Array(missing))
        for id in missing {
            names[id] = found[id]?.name ?? "Someone"
        }
    }

    /// The mail's payload: the first ``MissedMessagesMail/listed`` messages owed, oldest first, and how many more.
    func compose(for userID: String, owed: [ChatStore.UnreadItem], names: [String: String]) -> MissedMessagesMail {
        let items = owed.prefix(MissedMessagesMail.listed).map { item in
            MissedMessagesMail.Item(
                chatID: item.chatID,
                seq: item.seq,
                chatName: item.chatName,
                senderName: names[item.senderID] ?? "Someone",
                snippet: Self.snippet(of: item, names: names),
                createdAt: item.createdAt
            )
        }
        return MissedMessagesMail(
            userID: userID,
            appURL: self.settings.appURL,
            unsubscribeURL: self.links.url(for: userID),
            items: items,
            more: owed.count - items.count
        )
    }

    /// The start of a message as a mail shows it: mentions as @Name, at most 140 characters.
    static func snippet(of item: ChatStore.UnreadItem, names: [String: String]) -> String {
        switch item.kind {
        case "image": return "[image]"
        case "file": return "[file]"
        default:
            let text = MessageText.replacingMentions(in: item.text ?? "") { "@" + (names[$0] ?? "someone") }
            return text.count > 140 ? String(text.prefix(139)) + "…" : text
        }
    }

    static func millis(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

extension MissedMessageMailer {
    /// The mail worker's look at a missed-message mail just before it goes: the messages read since it was queued (on any
    /// device) are left out; nil, drop it, when none is left. Other mail passes unchanged.
    public static func revise(_ job: MailJob, database: Database) async throws -> MailJob? {
        guard job.template == MissedMessagesMail.template,
            var mail = try? JSONDecoder().decode(MissedMessagesMail.self, from: Data(job.payload.utf8))
        else { return job }
        let unread = try await ChatStore(database: database).stillUnread(mail.items.map { ($0.chatID, $0.seq) }, by: mail.userID)
        let kept = mail.items.filter { unread.contains(ChatStore.UnreadKey(chatID: $0.chatID, seq: $0.seq)) }
        guard !kept.isEmpty else { return nil }
        guard kept.count < mail.items.count else { return job }
        mail.items = kept
        var revised = job
        revised.payload = String(decoding: try JSONEncoder().encode(mail), as: UTF8.self)
        return revised
    }
}
