import Foundation
import Logging
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import Testing

@testable import ChatService

/// The users table read as the user service does: the address book of a mailer tested without one.
struct DatabaseAddressBook: MailAddressBook {
    let database: Database

    func mailContacts(of ids: [String]) async throws -> [String: MailContact] {
        guard !ids.isEmpty else { return [:] }
        return try await self.database.read { sql in
            var contacts: [String: MailContact] = [:]
            for row in try await sql.raw("SELECT id, name, email, email_notifications FROM users WHERE id IN (\(binds: ids))").all() {
                let contact = MailContact(
                    id: try row.decode(column: "id", as: String.self),
                    name: try row.decode(column: "name", as: String.self),
                    email: try row.decode(column: "email", as: String.self),
                    missedMessageMail: try row.decode(column: "email_notifications", as: Bool.self)
                )
                contacts[contact.id] = contact
            }
            return contacts
        }
    }
}

/// Missed-message mail on both databases, with the clock given to each pass: who is owed a mail and when, at most one
/// per period whatever the number of instances, nothing for what was read, and the mail worker's last look.
@Suite struct MissedMessageMailerTests {
    static let after: Int64 = 900_000
    static let interval: Int64 = 3_600_000

    /// A chat service, its writer running, and a mailer (or two, as two instances) on `database`.
    struct World {
        let database: Database
        let chats: ChatService
        let users: [String]
        let presence = LocalPresence()

        func mailer(instance: String = "a") async throws -> MissedMessageMailer {
            MissedMessageMailer(
                database: self.database,
                addressBook: DatabaseAddressBook(database: self.database),
                presence: self.presence,
                links: try await UnsubscribeLinks.load(database: self.database, baseURL: "https://chat.example"),
                settings: .init(
                    after: .milliseconds(Int(MissedMessageMailerTests.after)),
                    interval: .milliseconds(Int(MissedMessageMailerTests.interval)),
                    appURL: "https://chat.example"
                ),
                mailQueued: nil,
                logger: .init(label: "MissedMessageMailerTests")
            )
        }

        /// The mails queued so far, oldest first, with their decoded payloads.
        func queued() async throws -> [(recipient: String, mail: MissedMessagesMail)] {
            try await self.database.read { sql in
                try await sql.raw("SELECT recipient, payload FROM mail_outbox WHERE template = 'missed_messages' ORDER BY created_at, id").all()
            }.map { row in
                (
                    try row.decode(column: "recipient", as: String.self),
                    try JSONDecoder().decode(MissedMessagesMail.self, from: Data(try row.decode(column: "payload", as: String.self).utf8))
                )
            }
        }

        func email(of userID: String) async throws -> String {
            try await self.database.read { sql in
                try await sql.raw("SELECT email FROM users WHERE id = \(bind: userID)").first()!.decode(column: "email", as: String.self)
            }
        }

        func send(_ chatID: String, from userID: String, _ text: String) async throws -> Message {
            try await self.chats.send(chatID: chatID, userID: userID, text: text, upload: nil, clientMessageID: nil).0
        }
    }

    static func withWorld(_ kind: DatabaseKind, users count: Int, _ body: (World) async throws -> Void) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await makeUsers(count, in: database)
            let chats = try await ChatServiceTests().service(database, users: users)
            try await withRunning(chats.writer) {
                try await body(World(database: database, chats: chats, users: users))
            }
        }
    }

    static func millis(_ iso: String) -> Int64 {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return Int64((formatter.date(from: iso)!.timeIntervalSince1970 * 1000).rounded())
    }

    @Test(arguments: DatabaseKind.allCases)
    func aDirectMessageIsMailedOnceItIsOldEnoughThenNotAgainWithinTheInterval(_ kind: DatabaseKind) async throws {
        try await Self.withWorld(kind, users: 2) { world in
            let (ann, bob) = (world.users[0], world.users[1])
            let chat = try await world.chats.openDirect(userID: ann, with: bob).0
            let first = try await world.send(chat.id, from: ann, "lunch at <b>one</b>, <@\(bob)>?")
            let sentAt = Self.millis(first.createdAt)
            let mailer = try await world.mailer()
            // Not yet old enough: nothing.
            try await mailer.pass(now: sentAt + Self.after - 1)
            #expect(try await world.queued().isEmpty)
            try await mailer.pass(now: sentAt + Self.after)
            let mails = try await world.queued()
            #expect(mails.count == 1)
            let mail = try #require(mails.first)
            #expect(mail.recipient == (try await world.email(of: bob)))
            #expect(mail.mail.userID == bob && mail.mail.more == 0 && mail.mail.appURL == "https://chat.example")
            #expect(
                mail.mail.items == [
                    .init(chatID: chat.id, seq: 1, chatName: nil, senderName: "User 0", snippet: "lunch at <b>one</b>, @User 1?", createdAt: sentAt)
                ]
            )
            #expect(mail.mail.unsubscribeURL.hasPrefix("https://chat.example/api/v1/unsubscribe?user=\(bob)&sig="))
            // The sender is owed nothing for their own message; and the same message is not mailed twice.
            try await mailer.pass(now: sentAt + Self.after + Self.interval * 2)
            #expect(try await world.queued().count == 1)

            // A second message within the interval waits for the interval's end, and that mail lists only it.
            let second = try await world.send(chat.id, from: ann, "still there?")
            let secondAt = Self.millis(second.createdAt)
            let mailedAt = sentAt + Self.after
            try await mailer.pass(now: max(secondAt + Self.after, mailedAt + Self.interval - 1))
            #expect(try await world.queued().count == 1)
            try await mailer.pass(now: max(secondAt + Self.after, mailedAt + Self.interval))
            let later = try await world.queued()
            #expect(later.count == 2)
            #expect(later.last?.mail.items.map(\.snippet) == ["still there?"])
        }
    }

    /// A missed-message mail continues the trace of the send that made it owed: the mark keeps the first send's trace
    /// (a later send does not take it over while the mail is owed), the mail job is a child of it, and once the mail is
    /// dealt with the mark's trace goes.
    @Test(arguments: DatabaseKind.allCases)
    func theMailContinuesTheTraceOfTheSendThatMadeItOwed(_ kind: DatabaseKind) async throws {
        _ = TestTracing.installed
        try await Self.withWorld(kind, users: 2) { world in
            let (ann, bob) = (world.users[0], world.users[1])
            let chat = try await world.chats.openDirect(userID: ann, with: bob).0
            let (firstTrace, laterTrace) = ("4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c")
            let first = try await ParleyTracing.continuing("00-\(firstTrace)-00f067aa0ba902b7-01", "send") {
                try await world.send(chat.id, from: ann, "lunch?")
            }
            let later = try await ParleyTracing.continuing("00-\(laterTrace)-b7ad6b7169203331-01", "send") {
                try await world.send(chat.id, from: ann, "still there?")
            }
            let due = try await world.chats.store.missedMailDue(cutoff: Self.millis(first.createdAt), sentBefore: .max, limit: 10)
            #expect(due.map(\.userID) == [bob])
            let kept = try #require(due.first?.trace)
            #expect(kept.traceID == firstTrace, "the first send's trace, not the later one's")
            #expect(kept.spanID != "00f067aa0ba902b7", "the send's own span, a child of its caller's")

            try await world.mailer().pass(now: Self.millis(later.createdAt) + Self.after)
            let stored = try await world.database.read { sql in
                try await sql.raw("SELECT trace_parent FROM mail_outbox WHERE template = 'missed_messages'").all().map {
                    try $0.decode(column: "trace_parent", as: String?.self)
                }
            }
            #expect(try await world.queued().first?.mail.items.count == 2)
            let job = try #require(stored.first.flatMap { $0.flatMap(TraceParent.init(header:)) })
            #expect(job.traceID == firstTrace)
            #expect(job.spanID != kept.spanID, "the mail's own span, a child of the send's")
            let left = try await world.database.read { sql in
                try await sql.raw("SELECT trace_parent FROM missed_mail WHERE user_id = \(bind: bob)").first()?
                    .decode(column: "trace_parent", as: String?.self)
            }
            #expect(left == nil, "nothing waits: no trace is kept")

            // Only what Parley wrote is continued.
            _ = try await world.send(chat.id, from: ann, "hello?")
            try await world.database.transaction { sql in
                try await sql.raw("UPDATE missed_mail SET trace_parent = 'not-a-traceparent' WHERE user_id = \(bind: bob)").run()
            }
            let garbled = try await world.chats.store.missedMailDue(cutoff: .max, sentBefore: .max, limit: 10)
            #expect(garbled.map(\.userID) == [bob] && garbled.first?.trace == nil)
        }
    }

    /// What someone blocked writes to the blocker is kept from them: owed no mail, and not listed in one owed for other
    /// messages.
    @Test(arguments: DatabaseKind.allCases)
    func whatABlockedPersonWritesIsNotMailedToTheBlocker(_ kind: DatabaseKind) async throws {
        try await Self.withWorld(kind, users: 3) { world in
            let (ann, bob, cat) = (world.users[0], world.users[1], world.users[2])
            let chat = try await world.chats.openDirect(userID: ann, with: bob).0
            try await world.chats.block(ann, by: bob)
            let kept = try await world.send(chat.id, from: ann, "are you there?")
            let keptAt = Self.millis(kept.createdAt)
            let mailer = try await world.mailer()
            try await mailer.pass(now: keptAt + Self.after + Self.interval)
            #expect(try await world.queued().isEmpty)
            // A message from someone else makes Bob owed a mail: it lists that one alone.
            let other = try await world.chats.openDirect(userID: cat, with: bob).0
            let sent = try await world.send(other.id, from: cat, "lunch?")
            try await world.send(chat.id, from: ann, "hello??")
            try await mailer.pass(now: Self.millis(sent.createdAt) + Self.after + Self.interval)
            #expect(try await world.queued().map { $0.mail.items.map(\.snippet) } == [["lunch?"]])
        }
    }

    /// Two instances passing at the same moment over the same users: each user gets exactly one mail.
    @Test(arguments: DatabaseKind.allCases)
    func twoInstancesMailEachPersonOnce(_ kind: DatabaseKind) async throws {
        try await Self.withWorld(kind, users: 11) { world in
            let sender = world.users[0]
            var latest: Int64 = 0
            for recipient in world.users.dropFirst() {
                let chat = try await world.chats.openDirect(userID: sender, with: recipient).0
                for index in 0..<3 {
                    latest = max(latest, Self.millis(try await world.send(chat.id, from: sender, "message \(index)").createdAt))
                }
            }
            let (one, two) = (try await world.mailer(instance: "a"), try await world.mailer(instance: "b"))
            let now = latest + Self.after
            async let first = one.pass(now: now)
            async let second = two.pass(now: now)
            _ = try await (first, second)
            try await one.pass(now: now + 1)
            try await two.pass(now: now + 2)
            let mails = try await world.queued()
            #expect(mails.count == 10)
            #expect(Set(mails.map(\.mail.userID)) == Set(world.users.dropFirst()))
            #expect(mails.allSatisfy { $0.mail.items.count == 3 })
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func whatIsReadOnlineOrTurnedOffIsNotMailed(_ kind: DatabaseKind) async throws {
        try await Self.withWorld(kind, users: 4) { world in
            let (ann, bob, cat, dan) = (world.users[0], world.users[1], world.users[2], world.users[3])
            let toBob = try await world.chats.openDirect(userID: ann, with: bob).0
            let toCat = try await world.chats.openDirect(userID: ann, with: cat).0
            let toDan = try await world.chats.openDirect(userID: ann, with: dan).0
            let read = try await world.send(toBob.id, from: ann, "read at once")
            try await world.chats.markRead(chatID: toBob.id, userID: bob, seq: read.seq)
            let online = try await world.send(toCat.id, from: ann, "cat is online")
            _ = try await world.presence.arrived(cat)
            try await world.database.transaction { sql in
                try await sql.raw("UPDATE users SET email_notifications = FALSE WHERE id = \(bind: dan)").run()
            }
            let off = try await world.send(toDan.id, from: ann, "dan turned mail off")
            let mailer = try await world.mailer()
            let now = max(Self.millis(read.createdAt), Self.millis(online.createdAt), Self.millis(off.createdAt)) + Self.after
            try await mailer.pass(now: now)
            #expect(try await world.queued().isEmpty)
            // Bob and Dan are settled (nothing waits any more); Cat still waits, and is mailed once gone.
            let waiting = try await world.database.read { sql in
                try await sql.raw("SELECT user_id FROM missed_mail WHERE pending_since IS NOT NULL").all().map {
                    try $0.decode(column: "user_id", as: String.self)
                }
            }
            #expect(waiting == [cat])
            _ = try await world.presence.departed(cat)
            try await mailer.pass(now: now + 1)
            #expect(try await world.queued().map(\.mail.userID) == [cat])
        }
    }

    @Test(arguments: DatabaseKind.allCases)
    func inAGroupOnlyAMentionIsMailed(_ kind: DatabaseKind) async throws {
        try await Self.withWorld(kind, users: 3) { world in
            let (ann, bob, cat) = (world.users[0], world.users[1], world.users[2])
            // One adds to a group only people one shares a chat with.
            for other in [bob, cat] { _ = try await world.chats.openDirect(userID: ann, with: other) }
            let group = try await world.chats.createGroup(userID: ann, name: "Launch", memberIDs: [bob, cat])
            let plain = try await world.send(group.id, from: ann, "hello all")
            let mention = try await world.send(group.id, from: ann, "<@\(bob)> can you check?")
            try await world.mailer().pass(now: max(Self.millis(plain.createdAt), Self.millis(mention.createdAt)) + Self.after)
            let mails = try await world.queued()
            #expect(mails.map(\.mail.userID) == [bob])
            #expect(mails.first?.mail.items.map(\.chatName) == ["Launch"])
            #expect(mails.first?.mail.items.map(\.snippet) == ["@User 1 can you check?"])
        }
    }

    /// The worker's look just before sending: what was read since leaves the mail; all of it read drops the mail.
    @Test(arguments: DatabaseKind.allCases)
    func theWorkerLeavesOutWhatWasReadSinceTheMailWasQueued(_ kind: DatabaseKind) async throws {
        try await Self.withWorld(kind, users: 3) { world in
            let (ann, bob, cat) = (world.users[0], world.users[1], world.users[2])
            let toBob = try await world.chats.openDirect(userID: ann, with: bob).0
            let toCat = try await world.chats.openDirect(userID: ann, with: cat).0
            let one = try await world.send(toBob.id, from: ann, "one")
            let two = try await world.send(toCat.id, from: ann, "two")
            let three = try await world.send(toCat.id, from: ann, "three")
            let now = Self.millis(three.createdAt) + Self.after
            try await world.mailer().pass(now: now)
            let jobs = try await MailOutbox(database: world.database).claim(worker: "w", limit: 10, leaseMillis: 60_000, now: now)
            let (bobsAddress, catsAddress) = (try await world.email(of: bob), try await world.email(of: cat))
            let bobs = try #require(jobs.first { $0.recipient == bobsAddress })
            let cats = try #require(jobs.first { $0.recipient == catsAddress })
            try await world.chats.markRead(chatID: toBob.id, userID: bob, seq: one.seq)
            try await world.chats.markRead(chatID: toCat.id, userID: cat, seq: two.seq)
            #expect(try await MissedMessageMailer.revise(bobs, database: world.database) == nil)
            let revised = try #require(try await MissedMessageMailer.revise(cats, database: world.database))
            let mail = try JSONDecoder().decode(MissedMessagesMail.self, from: Data(revised.payload.utf8))
            #expect(mail.items.map(\.snippet) == ["three"])
        }
    }
}
