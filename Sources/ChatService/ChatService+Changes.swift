import ParleyCore
import ParleyStore

/// What members do with messages after sending them: edit, delete, react; and how clients find them again: the changes
/// since a version, a page around a message, and search.
extension ChatService {
    /// Submits a change to message `seq` of `chatID` for `userID`, to be carried out in the writer's next batch.
    func submitChange(chatID: String, seq: Int64, userID: String, action: ChatStore.MessageChange.Action) async throws -> PendingAppend {
        guard Identifier.isValid(chatID) else { throw ChatError.chatNotFound }
        guard seq >= 1 else { throw ChatError.messageNotFound }
        try self.limits.take(.message, userID: userID)
        return await self.writer.submit(
            .change(ChatStore.MessageChange(chatID: chatID, seq: seq, userID: userID, action: action, now: Timestamp.millis()))
        )
    }

    /// The action of an edit to `text`, validated as a send's text is.
    static func editAction(text rawText: String?) throws -> ChatStore.MessageChange.Action {
        guard let text = try Self.validateText(rawText, hasAttachment: false) else { throw ChatError.invalidText("A message needs text.") }
        return .edit(text: text, mentionCandidates: MessageText.mentionCandidates(in: text))
    }

    /// The action of adding (`on`) or removing reaction `emoji`, validated.
    static func reactAction(emoji: String, on: Bool) throws -> ChatStore.MessageChange.Action {
        guard MessageText.isSingleEmoji(emoji) else { throw ChatError.invalidEmoji }
        return .react(emoji: emoji, on: on)
    }

    /// Edits, deletes or reacts to a message, and answers with the message as it is after the change.
    func change(chatID: String, seq: Int64, userID: String, action: ChatStore.MessageChange.Action) async throws -> Message {
        try await self.sent(try await self.submitChange(chatID: chatID, seq: seq, userID: userID, action: action), for: userID).0
    }

    /// The messages of a chat changed after version `after`, in version order; and the version the caller stands at.
    func changes(in chatID: String, for userID: String, after: Int64, limit: Int) async throws -> ChangePage {
        guard Identifier.isValid(chatID), let version = try await self.store.version(of: chatID, visibleTo: userID) else {
            throw ChatError.chatNotFound
        }
        guard after < version else { return ChangePage(messages: [], version: max(after, version), hasMore: false) }
        let (records, hasMore) = try await self.store.changes(in: chatID, after: after, through: version, limit: limit)
        return ChangePage(
            messages: records.map { $0.seen(by: userID).message(signer: self.signer) },
            version: hasMore ? (records.last?.version ?? version) : version,
            hasMore: hasMore
        )
    }

    /// A page of messages holding `seq`, for a member only.
    func messages(in chatID: String, for userID: String, around seq: Int64, limit: Int) async throws -> MessagePageAround {
        guard Identifier.isValid(chatID), try await self.store.isMember(userID, of: chatID) else { throw ChatError.chatNotFound }
        let (records, olderLeft, newerLeft) = try await self.store.messages(in: chatID, around: seq, limit: limit)
        return MessagePageAround(
            messages: records.map { $0.seen(by: userID).message(signer: self.signer) },
            hasMore: olderLeft,
            hasMoreAfter: newerLeft
        )
    }

    /// The longest search query.
    static let maxQueryLength = 200

    /// Messages `userID` can see matching `query` (in `chatID` only, when given), newest first, with the matched words.
    func search(
        query: String,
        userID: String,
        chatID: String?,
        after cursor: ChatStore.SearchCursor?,
        limit: Int
    ) async throws -> (
        results: [SearchResult], next: ChatStore.SearchCursor?
    ) {
        guard query.count <= Self.maxQueryLength else { throw ChatError.invalidQuery("A search is at most \(Self.maxQueryLength) characters.") }
        let words = MessageText.searchWords(in: query)
        guard !words.isEmpty else { throw ChatError.invalidQuery("A search needs at least one word of letters or digits.") }
        if let chatID {
            guard Identifier.isValid(chatID), try await self.store.isMember(userID, of: chatID) else { throw ChatError.chatNotFound }
        }
        let (records, next) = try await self.store.search(words: words, userID: userID, chatID: chatID, after: cursor, limit: limit)
        // A message the person the caller blocks changed is found by what the caller sees of it.
        let found = records.filter { record in record.kept.map { $0.viewer != userID || MessageText.matches(words, in: $0.text ?? "") } ?? true }
        let results = found.map { $0.seen(by: userID) }.map { seen in
            SearchResult(
                message: seen.message(signer: self.signer),
                highlights: MessageText.highlights(of: words, in: seen.text ?? "").map { TextRange(start: $0.start, end: $0.end) }
            )
        }
        return (results, next)
    }
}
