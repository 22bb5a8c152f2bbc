public import Logging
import ParleyCore
import SQLKit

/// One step of the schema, written once in SQL that both SQLite and PostgreSQL accept.
public struct Migration: Sendable {
    /// Applied in increasing order; never renumbered once released.
    public let version: Int
    public let name: String
    /// Statements both engines run, then those of the engine at hand.
    public let statements: [String]
    public var sqlite: [String] = []
    public var postgres: [String] = []

    /// The statements to run on `dialect`.
    func statements(for dialect: Database.Dialect) -> [String] {
        self.statements + (dialect == .sqlite ? self.sqlite : self.postgres)
    }
}

/// Brings the schema up to date; safe to run from several processes at once.
public enum Migrator {
    /// Applies every migration not applied yet, in one transaction, and returns the versions it applied.
    @discardableResult
    public static func migrate(_ database: Database, logger: Logger) async throws -> [Int] {
        let applied = try await database.transaction { sql -> [Int] in
            if database.dialect == .postgres {
                // Serialises concurrent starts of several instances; released at commit.
                try await sql.raw("SELECT pg_advisory_xact_lock(7274301)").run()
            }
            try await sql.raw(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            ).run()
            let done = Set(try await sql.raw("SELECT version FROM schema_migrations").all().map { try $0.decode(column: "version", as: Int.self) })
            var applied: [Int] = []
            for migration in Schema.migrations where !done.contains(migration.version) {
                for statement in migration.statements(for: database.dialect) {
                    try await sql.raw(SQLQueryString(statement)).run()
                }
                try await sql.raw(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: Timestamp.millis()))"
                ).run()
                applied.append(migration.version)
            }
            return applied
        }
        for version in applied {
            logger.info("applied migration", metadata: ["version": "\(version)"])
        }
        return applied
    }
}

/// The schema of every service, in order. Times are integer milliseconds since the epoch; ids are UUIDv7 text.
public enum Schema {
    public static let migrations: [Migration] = [
        Migration(
            version: 1,
            name: "users, login codes, rate limits, refresh tokens, mail outbox",
            statements: [
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    email TEXT NOT NULL UNIQUE,
                    name TEXT NOT NULL,
                    name_search TEXT NOT NULL,
                    avatar_file_id TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX users_name_search ON users (name_search, id)",
                """
                CREATE TABLE login_codes (
                    email TEXT PRIMARY KEY,
                    code_hash TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    expires_at BIGINT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE rate_limits (
                    bucket TEXT PRIMARY KEY,
                    window_start BIGINT NOT NULL,
                    hits INTEGER NOT NULL
                )
                """,
                """
                CREATE TABLE refresh_tokens (
                    id TEXT PRIMARY KEY,
                    token_hash TEXT NOT NULL UNIQUE,
                    family_id TEXT NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    rotated_at BIGINT,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)",
                """
                CREATE TABLE mail_outbox (
                    id TEXT PRIMARY KEY,
                    template TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    request_id TEXT,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at BIGINT NOT NULL,
                    locked_by TEXT,
                    locked_until BIGINT,
                    last_error TEXT,
                    created_at BIGINT NOT NULL,
                    sent_at BIGINT
                )
                """,
                "CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at)",
            ]
        ),
        Migration(
            version: 2,
            name: "chats, members with read pointers, messages with per-chat seq, files, server secrets",
            statements: [
                """
                CREATE TABLE chats (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    name TEXT,
                    direct_key TEXT UNIQUE,
                    created_by TEXT NOT NULL,
                    last_seq BIGINT NOT NULL DEFAULT 0,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE chat_members (
                    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
                    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    last_read_seq BIGINT NOT NULL DEFAULT 0,
                    joined_at BIGINT NOT NULL,
                    PRIMARY KEY (chat_id, user_id)
                )
                """,
                "CREATE INDEX chat_members_user ON chat_members (user_id, chat_id)",
                """
                CREATE TABLE messages (
                    id TEXT PRIMARY KEY,
                    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
                    seq BIGINT NOT NULL,
                    sender_id TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    text TEXT,
                    file_id TEXT,
                    client_message_id TEXT,
                    created_at BIGINT NOT NULL,
                    UNIQUE (chat_id, seq)
                )
                """,
                "CREATE UNIQUE INDEX messages_client_id ON messages (chat_id, sender_id, client_message_id) WHERE client_message_id IS NOT NULL",
                """
                CREATE TABLE files (
                    id TEXT PRIMARY KEY,
                    owner_id TEXT NOT NULL,
                    chat_id TEXT,
                    content_type TEXT NOT NULL,
                    size BIGINT NOT NULL,
                    width INTEGER,
                    height INTEGER,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE server_secrets (
                    name TEXT PRIMARY KEY,
                    value TEXT NOT NULL
                )
                """,
            ]
        ),
        Migration(
            version: 3,
            name: "presence across instances, event bus payloads too large for a notification",
            statements: [
                """
                CREATE TABLE presence (
                    instance_id TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    PRIMARY KEY (user_id, instance_id)
                )
                """,
                "CREATE INDEX presence_instance ON presence (instance_id)",
                "CREATE INDEX presence_expiry ON presence (expires_at)",
                """
                CREATE TABLE bus_payloads (
                    id TEXT PRIMARY KEY,
                    body TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
            ]
        ),
        Migration(
            version: 4,
            name: "ended login sessions, whose sockets close",
            statements: [
                """
                CREATE TABLE ended_sessions (
                    session_id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    ended_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX ended_sessions_time ON ended_sessions (ended_at)",
            ]
        ),
        Migration(
            version: 5,
            name: "wrong login codes counted per email across codes, with a lockout",
            statements: [
                // Kept when a new code replaces the row's code: a fresh code does not reset the count.
                "ALTER TABLE login_codes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
                "ALTER TABLE login_codes ADD COLUMN last_failure_at BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE login_codes ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0",
            ]
        ),
        Migration(
            version: 6,
            name: "message changes: versions, edits, replies, reactions, mentions, full-text search",
            statements: [
                // Every change to a chat's messages takes the chat's next version; a message carries its latest.
                "ALTER TABLE chats ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
                "UPDATE chats SET version = last_seq",
                "ALTER TABLE messages ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
                "UPDATE messages SET version = seq",
                "CREATE UNIQUE INDEX messages_version ON messages (chat_id, version)",
                // When a message last changed: the event bus's catch-up reads recent changes by it.
                "ALTER TABLE messages ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0",
                "UPDATE messages SET changed_at = created_at",
                "CREATE INDEX messages_changed ON messages (changed_at)",
                "ALTER TABLE messages ADD COLUMN edited_at BIGINT",
                "ALTER TABLE messages ADD COLUMN reply_to_seq BIGINT",
                // The reactions as the API shows them (JSON), written under the chat's lock; NULL when none.
                "ALTER TABLE messages ADD COLUMN reactions TEXT",
                // The mentioned members' ids, space-separated, for showing; the table below counts them.
                "ALTER TABLE messages ADD COLUMN mentions TEXT",
                """
                CREATE TABLE message_mentions (
                    user_id TEXT NOT NULL,
                    chat_id TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
                    seq BIGINT NOT NULL,
                    PRIMARY KEY (user_id, chat_id, seq)
                )
                """,
            ],
            sqlite: [
                // An index of the messages table's text (external content): the triggers keep it in step with every
                // insert, edit and erasure. Its keys are the messages' rowids; after a VACUUM (which may renumber them)
                // `INSERT INTO message_search(message_search) VALUES ('rebuild')` rebuilds it.
                """
                CREATE VIRTUAL TABLE message_search USING fts5(
                    text, content = 'messages', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 0'
                )
                """,
                """
                CREATE TRIGGER message_search_insert AFTER INSERT ON messages WHEN new.text IS NOT NULL BEGIN
                    INSERT INTO message_search (rowid, text) VALUES (new.rowid, new.text);
                END
                """,
                """
                CREATE TRIGGER message_search_update AFTER UPDATE OF text ON messages WHEN old.text IS NOT new.text BEGIN
                    INSERT INTO message_search (message_search, rowid, text) SELECT 'delete', old.rowid, old.text WHERE old.text IS NOT NULL;
                    INSERT INTO message_search (rowid, text) SELECT new.rowid, new.text WHERE new.text IS NOT NULL;
                END
                """,
                """
                CREATE TRIGGER message_search_delete AFTER DELETE ON messages WHEN old.text IS NOT NULL BEGIN
                    INSERT INTO message_search (message_search, rowid, text) VALUES ('delete', old.rowid, old.text);
                END
                """,
                "INSERT INTO message_search (message_search) VALUES ('rebuild')",
            ],
            postgres: [
                // Words as written (the 'simple' configuration: no stemming, any language), kept by PostgreSQL itself;
                // lower-cased by Unicode's rules (ICU's root locale), not the database's locale, which may be C and would
                // leave ПЯТНИЦА or CRÈME as they are.
                """
                ALTER TABLE messages ADD COLUMN search tsvector
                GENERATED ALWAYS AS (to_tsvector('simple', lower(coalesce(text, '') COLLATE "und-x-icu"))) STORED
                """,
                "CREATE INDEX messages_search ON messages USING GIN (search)",
            ]
        ),
        Migration(
            version: 7,
            name: "files: avatars marked, usage per owner, unclaimed uploads found by age",
            statements: [
                // Since when the file has been its owner's avatar; NULL when it is not (any more).
                "ALTER TABLE files ADD COLUMN avatar_since BIGINT",
                "UPDATE files SET avatar_since = created_at WHERE id IN (SELECT avatar_file_id FROM users WHERE avatar_file_id IS NOT NULL)",
                // What an owner stores, summed for the storage quota.
                "CREATE INDEX files_owner ON files (owner_id, size)",
                // Uploads no message carries and no one has as avatar, oldest first: the sweep collects them.
                "CREATE INDEX files_unclaimed ON files (created_at) WHERE chat_id IS NULL AND avatar_since IS NULL",
            ]
        ),
        Migration(
            version: 8,
            name: "groups people manage: member roles, group photos, system messages; blocks",
            statements: [
                // owner, admin or member; a group's creator is its owner, everyone in a direct chat a member.
                "ALTER TABLE chat_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member'",
                """
                UPDATE chat_members SET role = 'owner' WHERE chat_id IN (
                    SELECT c.id FROM chats c WHERE c.kind = 'group' AND c.created_by = chat_members.user_id
                )
                """,
                // A group's photo: an image its setter uploaded, held as an avatar (never swept as unclaimed).
                "ALTER TABLE chats ADD COLUMN avatar_file_id TEXT",
                // 1 on a direct chat while one side blocks the other: nothing new is written into it.
                "ALTER TABLE chats ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0",
                // What a system message ("Ann added Ben") says, as JSON in the API's shape; NULL on other messages.
                "ALTER TABLE messages ADD COLUMN system TEXT",
                """
                CREATE TABLE blocks (
                    blocker_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    blocked_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (blocker_id, blocked_id)
                )
                """,
                "CREATE INDEX blocks_blocked ON blocks (blocked_id, blocker_id)",
            ]
        ),
        Migration(
            version: 9,
            name: "files of any kind: their kind and sanitised name, image thumbnails tied to their image",
            statements: [
                // `image` (shown inline), `file` (any other kind, served as an attachment), `thumbnail` (an image's preview).
                "ALTER TABLE files ADD COLUMN kind TEXT NOT NULL DEFAULT 'image'",
                // The uploader's file name, sanitised; NULL when the upload had none.
                "ALTER TABLE files ADD COLUMN name TEXT",
                // A thumbnail's image: it is attached, swept and erased with it.
                "ALTER TABLE files ADD COLUMN parent_id TEXT",
                "CREATE INDEX files_parent ON files (parent_id) WHERE parent_id IS NOT NULL",
            ]
        ),
        Migration(
            version: 10,
            name: "missed-message mail: the per-user setting, and what each user is owed and was last mailed",
            statements: [
                "ALTER TABLE users ADD COLUMN email_notifications BOOLEAN NOT NULL DEFAULT TRUE",
                // One row per user who has been sent a direct message or a mention: since when something is waiting to be
                // mailed (NULL: nothing), and when the last mail went.
                """
                CREATE TABLE missed_mail (
                    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
                    pending_since BIGINT,
                    last_sent_at BIGINT
                )
                """,
                // Per member, the last seq a missed-message mail dealt with: a message is mailed once at most.
                "ALTER TABLE chat_members ADD COLUMN mailed_seq BIGINT NOT NULL DEFAULT 0",
                "CREATE INDEX missed_mail_pending ON missed_mail (pending_since) WHERE pending_since IS NOT NULL",
            ]
        ),
        Migration(
            version: 11,
            name: "traces: a mail job keeps the traceparent of the work that queued it",
            statements: [
                "ALTER TABLE mail_outbox ADD COLUMN trace_parent TEXT"
            ]
        ),
        Migration(
            version: 12,
            name: "invisible blocks: what a blocked person writes to the blocker is kept for the writer alone",
            statements: [
                // The member who does not see this message (it reads as a tombstone to them): the one who blocks its
                // writer. NULL for every other message.
                "ALTER TABLE messages ADD COLUMN hidden_from TEXT",
                // The blocker's unread count leaves these out: a look at their few rows, not at every unread message.
                "CREATE INDEX messages_hidden ON messages (hidden_from, chat_id, seq) WHERE hidden_from IS NOT NULL",
                // A direct chat a blocked person opened with the one who blocks them: not in the blocker's chat list
                // until they unblock.
                "ALTER TABLE chat_members ADD COLUMN hidden BOOLEAN NOT NULL DEFAULT FALSE",
            ]
        ),
        Migration(
            version: 13,
            name: "invisible blocks: a blocked person's change of what the blocker has seen is kept from the blocker",
            statements: [
                // What the one who blocks a message's changer still sees of it, as it was before the change (JSON: who,
                // text, edit time, mentions, reactions). NULL for every other message.
                "ALTER TABLE messages ADD COLUMN kept_view TEXT"
            ]
        ),
        Migration(
            version: 14,
            name: "privacy: whether people who share a chat with someone may add them to groups",
            statements: [
                "ALTER TABLE users ADD COLUMN allow_group_adds BOOLEAN NOT NULL DEFAULT TRUE"
            ]
        ),
        Migration(
            version: 15,
            name: "traces: a missed-message mail continues the trace of the send that made it owed",
            statements: [
                // The `traceparent` of the send that set `pending_since` (55 characters, as Parley writes it); NULL when
                // that send had none, or once nothing waits.
                "ALTER TABLE missed_mail ADD COLUMN trace_parent TEXT"
            ]
        ),
    ]
}
