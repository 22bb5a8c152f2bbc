import ParleyCore
import ParleyStore
import SQLKit

/// Full-text search over messages: SQLite's FTS5 index `message_search`, or PostgreSQL's `tsvector` column `search` with
/// its GIN index, behind one method. Both match whole words as written (no stemming); a word marked as a prefix matches
/// the words that start with it.
extension ChatStore {
    /// The position after the last hit of a page: SQLite, the index's row id; PostgreSQL, the message id (all chats) or its
    /// seq (one chat).
    struct SearchCursor: Codable {
        var k: String
    }

    /// How many of the newest messages a search reads in order before it asks the index: on PostgreSQL every search (see
    /// ``searchPostgres(query:userID:chatID:after:limit:window:)``), on SQLite one with a prefix (see
    /// ``searchSQLite(words:userID:chatID:after:limit:window:)``), whose window is smaller (its texts are matched here).
    static let searchWindow = 10_000
    /// At most this many texts are matched here (SQLite, a search with a prefix): a few milliseconds' work.
    static let textMatchWindow = 500

    /// Messages that `userID` can see (chats they are a member of, or the one `chatID`) whose text has every one of
    /// `words`, newest first, after `cursor`; deleted messages never, nor what someone they block wrote to them. Also the next page's cursor.
    func search(
        words: [SearchWord],
        userID: String,
        chatID: String?,
        after cursor: SearchCursor?,
        limit: Int,
        window: Int = ChatStore.searchWindow
    ) async throws -> (records: [MessageRecord], next: SearchCursor?) {
        precondition(!words.isEmpty && words.allSatisfy { $0.text.allSatisfy { $0.isLetter || $0.isNumber } }, "search words are letters and digits")
        // Only a key of the kind this search pages by (a cursor of all chats does not fit one chat's on PostgreSQL).
        if let cursor, self.database.dialect == .sqlite || chatID != nil ? Int64(cursor.k) == nil : !Identifier.isValid(cursor.k) {
            throw APIError.badRequest("The cursor is not valid.", code: "invalid_cursor")
        }
        let hits: [(record: MessageRecord, key: String)]
        switch self.database.dialect {
        case .sqlite:
            hits = try await self.searchSQLite(words: words, userID: userID, chatID: chatID, after: cursor, limit: limit + 1, window: window)
        case .postgres:
            let query = words.map { $0.isPrefix ? "\($0.text):*" : $0.text }.joined(separator: " & ")
            hits = try await self.searchPostgres(query: query, userID: userID, chatID: chatID, after: cursor, limit: limit + 1, window: window)
        }
        let page = hits.prefix(limit)
        return (page.map(\.record), hits.count > limit ? page.last.map { SearchCursor(k: $0.key) } : nil)
    }

    /// Quoted words, each with `*` when a prefix, all required. FTS5 reads an exact word's row ids backwards from the end,
    /// and the index's rowid order is the messages' insertion order, so the newest hits come first without sorting every
    /// match. A prefix is another matter: FTS5 merges the row ids of every word that starts with it before it can hand
    /// out the newest (a million of them for the start of a word every message has). So a search with a prefix first
    /// reads the newest `window` messages' texts and matches them here, by the same rule (a common prefix fills its
    /// page there), and asks FTS5 only for the older ones when the page is not full.
    private func searchSQLite(
        words: [SearchWord],
        userID: String,
        chatID: String?,
        after cursor: SearchCursor?,
        limit: Int,
        window: Int
    ) async throws -> [(record: MessageRecord, key: String)] {
        let match = words.map { $0.isPrefix ? "\"\($0.text)\"*" : "\"\($0.text)\"" }.joined(separator: " ")
        let before = cursor.flatMap { Int64($0.k) }
        return try await self.database.read { sql in
            var found: [(record: MessageRecord, key: String)] = []
            var older: Int64? = before
            if words.contains(where: \.isPrefix) {
                // The window: the newest `window` rows below the cursor (any chat's), the caller's among them matched here.
                var top: Int64 = 1
                if let before {
                    top = before
                } else if let row = try await sql.raw("SELECT coalesce(max(rowid), 0) + 1 AS top FROM messages").first() {
                    top = try row.decode(column: "top", as: Int64.self)
                }
                let bottom = top - Int64(min(window, Self.textMatchWindow))
                // The rowid range must drive the query: `CROSS JOIN` keeps `messages` outside (SQLite does not reorder
                // it), and the unary `+` keeps the planner off the (chat_id, seq) index, which would walk the whole
                // chat (EXPLAIN QUERY PLAN on the bench's million-message chat: 129 ms that way, 1.4 ms this way).
                var recent = SQLQueryString(
                    """
                    SELECT m.rowid AS search_key, m.text FROM messages m
                    CROSS JOIN chat_members me ON me.chat_id = m.chat_id AND me.user_id = \(bind: userID)
                    WHERE m.rowid < \(bind: top) AND m.rowid >= \(bind: bottom) AND m.kind <> 'deleted' AND (m.hidden_from IS NULL OR m.hidden_from <> \(bind: userID)) AND m.text IS NOT NULL
                    """
                )
                if let chatID { recent = SQLQueryString("\(recent) AND +m.chat_id = \(bind: chatID)") }
                var keys: [Int64] = []
                for row in try await sql.raw(SQLQueryString("\(recent) ORDER BY m.rowid DESC")).all() {
                    if MessageText.matches(words, in: try row.decode(column: "text", as: String.self)) {
                        keys.append(try row.decode(column: "search_key", as: Int64.self))
                        if keys.count == limit { break }
                    }
                }
                if !keys.isEmpty {
                    found = try await sql.raw(
                        """
                        SELECT \(MessageRecord.columns), m.rowid AS search_key FROM messages m \(MessageRecord.joins)
                        WHERE m.rowid IN (\(SQLList(keys.map { SQLBind($0) }))) ORDER BY m.rowid DESC
                        """
                    ).all().map { (try MessageRecord(row: $0), String(try $0.decode(column: "search_key", as: Int64.self))) }
                }
                guard found.count < limit, bottom > 1 else { return found }
                older = bottom
            }
            var statement = SQLQueryString(
                """
                SELECT \(MessageRecord.columns), s.rowid AS search_key FROM message_search s JOIN messages m ON m.rowid = s.rowid
                JOIN chat_members me ON me.chat_id = m.chat_id AND me.user_id = \(bind: userID) \(MessageRecord.joins)
                WHERE message_search MATCH \(bind: match) AND m.kind <> 'deleted' AND (m.hidden_from IS NULL OR m.hidden_from <> \(bind: userID))
                """
            )
            if let chatID { statement = SQLQueryString("\(statement) AND m.chat_id = \(bind: chatID)") }
            if let older { statement = SQLQueryString("\(statement) AND s.rowid < \(bind: older)") }
            statement = SQLQueryString("\(statement) ORDER BY s.rowid DESC LIMIT \(bind: limit - found.count)")
            return found
                + (try await sql.raw(statement).all().map { row in
                    (try MessageRecord(row: row), String(try row.decode(column: "search_key", as: Int64.self)))
                })
        }
    }

    /// PostgreSQL's planner cannot tell a rare word from a common one (a word outside its statistics counts as in 0.5% of
    /// rows), so one plan is slow for one of them: walking the newest messages backwards finds a common word at once and a
    /// rare one after a million rows; the GIN index finds a rare word at once and a common one as a million rows to sort.
    /// So the search takes both, in turn: first the newest `window` messages in order (a common word fills the page
    /// there), then, only if the page is not full, the GIN index's hits among the older ones, sorted (a word that is not
    /// common in the newest messages has few hits, or few recent ones). One chat is read by seq (dense, so its newest
    /// `window` messages are a seq range); all chats by id.
    private func searchPostgres(
        query: String,
        userID: String,
        chatID: String?,
        after cursor: SearchCursor?,
        limit: Int,
        window: Int
    ) async throws -> [(record: MessageRecord, key: String)] {
        try await self.database.read { sql in
            let key: SQLQueryString = chatID == nil ? "m.id" : "m.seq"
            var scope = SQLQueryString(
                """
                JOIN chat_members me ON me.chat_id = m.chat_id AND me.user_id = \(bind: userID)
                WHERE m.search @@ to_tsquery('simple', \(bind: query)) AND m.kind <> 'deleted' AND (m.hidden_from IS NULL OR m.hidden_from <> \(bind: userID))
                """
            )
            // The newest message (all chats: the `window`-th newest) the window does not hold, if any.
            let boundary: SQLQueryString?
            if let chatID {
                scope = SQLQueryString("\(scope) AND m.chat_id = \(bind: chatID)")
                let below: Int64
                if let cursor, let seq = Int64(cursor.k) {
                    below = seq
                } else {
                    let row = try await sql.raw("SELECT last_seq FROM chats WHERE id = \(bind: chatID)").first()
                    below = (try row?.decode(column: "last_seq", as: Int64.self) ?? 0) + 1
                }
                scope = SQLQueryString("\(scope) AND m.seq < \(bind: below)")
                boundary = below - 1 - Int64(window) > 0 ? SQLQueryString("\(bind: below - 1 - Int64(window))") : nil
            } else {
                if let cursor { scope = SQLQueryString("\(scope) AND m.id < \(bind: cursor.k)") }
                let older = cursor.map { SQLQueryString("WHERE id < \(bind: $0.k)") } ?? ""
                let row = try await sql.raw("SELECT id FROM messages \(older) ORDER BY id DESC OFFSET \(bind: window) LIMIT 1").first()
                boundary = try row.map { SQLQueryString("\(bind: try $0.decode(column: "id", as: String.self))") }
            }
            func hits(_ statement: SQLQueryString) async throws -> [(record: MessageRecord, key: String)] {
                try await sql.raw(statement).all().map { row in
                    let key =
                        chatID == nil
                        ? try row.decode(column: "search_key", as: String.self) : String(try row.decode(column: "search_key", as: Int64.self))
                    return (try MessageRecord(row: row), key)
                }
            }
            let recent = boundary.map { SQLQueryString("AND \(key) > \($0)") } ?? ""
            var found = try await hits(
                """
                SELECT \(MessageRecord.columns), \(key) AS search_key FROM messages m \(MessageRecord.joins) \(scope) \(recent)
                ORDER BY \(key) DESC LIMIT \(bind: limit)
                """
            )
            guard let boundary, found.count < limit else { return found }
            // MATERIALIZED keeps the planner from turning this back into the backward walk: the hits come from the index.
            found += try await hits(
                """
                WITH hits AS MATERIALIZED (SELECT m.id, \(key) AS search_key FROM messages m \(scope) AND \(key) <= \(boundary))
                SELECT \(MessageRecord.columns), \(key) AS search_key FROM messages m \(MessageRecord.joins)
                WHERE m.id IN (SELECT id FROM hits ORDER BY search_key DESC LIMIT \(bind: limit - found.count))
                ORDER BY \(key) DESC
                """
            )
            return found
        }
    }
}
