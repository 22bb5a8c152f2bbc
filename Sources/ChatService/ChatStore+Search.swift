import ParleyCore
import ParleyStore
import SQLKit

/// Full-text search over messages: SQLite's FTS5 index `message_search`, or PostgreSQL's `tsvector` column `search` with
/// its GIN index, behind one method. Both match words as written (no stemming), each query word as a prefix.
extension ChatStore {
    /// The position after the last hit of a page: the index's key of that message (SQLite: the row id; PostgreSQL: the id).
    struct SearchCursor: Codable {
        var k: String
    }

    /// Messages that `userID` can see (chats they are a member of, or the one `chatID`) whose text has every one of
    /// `words` as the start of a word, newest first, after `cursor`; deleted messages never. Also the next page's cursor.
    func search(
        words: [String],
        userID: String,
        chatID: String?,
        after cursor: SearchCursor?,
        limit: Int
    ) async throws -> (records: [MessageRecord], next: SearchCursor?) {
        precondition(!words.isEmpty && words.allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber } }, "search words are letters and digits")
        let dialect = self.database.dialect
        return try await self.database.read { sql in
            let rows: [any SQLRow]
            switch dialect {
            case .sqlite:
                // Quoted words with `*`: each a prefix, all required. The index's rowid order is the messages' insertion
                // order, so the newest hits come first without sorting every match.
                let match = words.map { "\"\($0)\"*" }.joined(separator: " ")
                var statement = SQLQueryString(
                    """
                    SELECT \(MessageRecord.columns), s.rowid AS search_key FROM message_search s JOIN messages m ON m.rowid = s.rowid
                    JOIN chat_members me ON me.chat_id = m.chat_id AND me.user_id = \(bind: userID) \(MessageRecord.joins)
                    WHERE message_search MATCH \(bind: match) AND m.kind <> 'deleted'
                    """
                )
                if let chatID { statement = SQLQueryString("\(statement) AND m.chat_id = \(bind: chatID)") }
                if let cursor, let rowid = Int64(cursor.k) { statement = SQLQueryString("\(statement) AND s.rowid < \(bind: rowid)") }
                rows = try await sql.raw(SQLQueryString("\(statement) ORDER BY s.rowid DESC LIMIT \(bind: limit + 1)")).all()
            case .postgres:
                let query = words.map { "\($0):*" }.joined(separator: " & ")
                var statement = SQLQueryString(
                    """
                    SELECT \(MessageRecord.columns), m.id AS search_key FROM messages m
                    JOIN chat_members me ON me.chat_id = m.chat_id AND me.user_id = \(bind: userID) \(MessageRecord.joins)
                    WHERE m.search @@ to_tsquery('simple', \(bind: query)) AND m.kind <> 'deleted'
                    """
                )
                if let chatID { statement = SQLQueryString("\(statement) AND m.chat_id = \(bind: chatID)") }
                if let cursor { statement = SQLQueryString("\(statement) AND m.id < \(bind: cursor.k)") }
                rows = try await sql.raw(SQLQueryString("\(statement) ORDER BY m.id DESC LIMIT \(bind: limit + 1)")).all()
            }
            var records: [MessageRecord] = []
            var keys: [String] = []
            for row in rows.prefix(limit) {
                records.append(try MessageRecord(row: row))
                keys.append(
                    dialect == .sqlite
                        ? String(try row.decode(column: "search_key", as: Int64.self)) : try row.decode(column: "search_key", as: String.self)
                )
            }
            return (records, rows.count > limit ? keys.last.map { SearchCursor(k: $0) } : nil)
        }
    }
}
