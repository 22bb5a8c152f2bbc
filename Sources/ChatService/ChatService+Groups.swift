import Foundation
import ParleyCore
import ParleyStore

/// What owners and admins do with a group (rename it, set its photo, add and remove members, change roles), leaving,
/// and blocking. Every change to a group is a system message in its timeline, and its members hear `chatUpdated`.
extension ChatService {
    /// A group's name, trimmed and checked: 1–100 characters without control or invisible formatting characters.
    static func validateGroupName(_ rawName: String) throws -> String {
        let name = rawName.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...100).contains(name.count), name.utf8.count <= 400, !NameText.hasHiddenCharacters(name) else { throw ChatError.invalidGroupName }
        return name
    }

    /// Renames group `chatID` and/or sets its photo (`.some(nil)` removes it); answers the group as the caller now sees it.
    func updateGroup(chatID: String, userID: String, name rawName: String?, avatarFileID: String??) async throws -> ChatSummary {
        guard Identifier.isValid(chatID), try await self.store.isMember(userID, of: chatID) else { throw ChatError.chatNotFound }
        let name = try rawName.map(Self.validateGroupName)
        var photo: GroupChange.Photo?
        switch avatarFileID {
        case .none: photo = nil
        case .some(.none): photo = .removed
        case .some(.some(let fileID)):
            guard Identifier.isValid(fileID), let file = try await self.files.file(fileID) else { throw ChatError.fileNotFound }
            guard file.contentType.hasPrefix("image/") else { throw ChatError.unsupportedImage }
            photo = .set(fileID: fileID)
        }
        try await self.changeGroup(chatID, by: userID) { try GroupRules.update($0, by: userID, name: name, photo: photo) }
        return try await self.summary(of: chatID, for: userID)
    }

    /// Adds `userIDs` to group `chatID`: people the caller may add (see ``requireReachable(_:from:)``).
    func addMembers(chatID: String, userID: String, userIDs: [String]) async throws -> ChatSummary {
        guard Identifier.isValid(chatID) else { throw ChatError.chatNotFound }
        guard !userIDs.isEmpty else { throw ChatError.invalidMembers("Name at least one person to add.") }
        guard userIDs.count <= Self.maxGroupMembers else { throw ChatError.invalidMembers("A group has at most \(Self.maxGroupMembers) members.") }
        for id in userIDs where !Identifier.isValid(id) { throw ChatError.memberNotFound(String(id.prefix(40))) }
        // A stranger learns nothing of the group's members: the membership is checked before anyone named is.
        guard try await self.store.isMember(userID, of: chatID) else { throw ChatError.chatNotFound }
        let existing = try await self.directory.profiles(of: userIDs)
        if let missing = userIDs.first(where: { existing[$0] == nil }) { throw ChatError.memberNotFound(missing) }
        let current = Set(try await self.store.memberIDs(of: chatID))
        try await self.requireReachable(userIDs.filter { !current.contains($0) && $0 != userID }, from: userID, profiles: existing)
        try await self.changeGroup(chatID, by: userID) { try GroupRules.add(userIDs, to: $0, by: userID, maxMembers: Self.maxGroupMembers) }
        return try await self.summary(of: chatID, for: userID)
    }

    /// Removes `memberID` from group `chatID`, or, when it is the caller, leaves it.
    func removeMember(chatID: String, userID: String, memberID: String) async throws {
        guard Identifier.isValid(chatID) else { throw ChatError.chatNotFound }
        try await self.changeGroup(chatID, by: userID) { state in
            guard Identifier.isValid(memberID) else {
                _ = try GroupRules.standing(of: userID, in: state)
                throw ChatError.notAMember(String(memberID.prefix(40)))
            }
            return try GroupRules.remove(memberID, from: state, by: userID)
        }
    }

    /// Gives `memberID` `role` in group `chatID`.
    func setRole(chatID: String, userID: String, memberID: String, role rawRole: String) async throws -> ChatSummary {
        guard Identifier.isValid(chatID) else { throw ChatError.chatNotFound }
        guard let role = GroupRole(rawValue: rawRole) else { throw ChatError.invalidRole }
        try await self.changeGroup(chatID, by: userID) { state in
            guard Identifier.isValid(memberID) else {
                _ = try GroupRules.standing(of: userID, in: state)
                throw ChatError.notAMember(String(memberID.prefix(40)))
            }
            return try GroupRules.setRole(role, of: memberID, in: state, by: userID)
        }
        return try await self.summary(of: chatID, for: userID)
    }

    /// Refuses the first of `candidates` the caller may not put into a group: people who share no chat with them, who
    /// turned group adds off, or with a block either way (the answer does not tell which).
    func requireReachable(_ candidates: [String], from userID: String, profiles: [String: PublicUser]) async throws {
        let reachable = try await self.store.reachable(from: userID, among: candidates, refusing: self.groupAddRefusals)
        if let stranger = candidates.first(where: { !reachable.contains($0) }) {
            throw ChatError.notReachable(name: profiles[stranger]?.name ?? stranger)
        }
    }

    /// Carries out a change `plan` decides under the group's lock, then tells everyone: the members' caches on every
    /// instance (`chatUpdated`, before the system messages, so that people added hear them and people removed do not),
    /// the people removed (`chatRemoved`), and the system messages in seq order.
    func changeGroup(_ chatID: String, by userID: String, plan: (GroupState) throws -> GroupChange) async throws {
        // A change is a message in the timeline: it counts against the sender's message rate.
        try self.limits.take(.message, userID: userID)
        var removed: [String] = []
        let records = try await self.store.changeGroup(chatID, by: userID, now: Timestamp.millis()) { state in
            let change = try plan(state)
            removed = change.removed
            return change
        }
        guard !records.isEmpty else { return }
        if let summary = try await self.publicSummary(of: chatID) {
            self.membership.remember(chatID, members: summary.members.map(\.id))
            self.bus.publish(.chatUpdated(summary))
        }
        if !removed.isEmpty { self.bus.publish(.chatRemoved(chatID: chatID, userIDs: removed)) }
        for record in records { self.bus.publish(.newMessage(record)) }
    }

    /// The group as its members see it after a change, for `chatUpdated`: the counts (`unreadCount`, `mentionCount`)
    /// are those of its first member, and each client keeps its own.
    func publicSummary(of chatID: String) async throws -> ChatSummary? {
        guard let record = try await self.store.chat(chatID) else { return nil }
        let viewer = try await self.store.memberIDs(of: chatID).first ?? ""
        return try await self.summaries(of: [record], for: viewer).first
    }

    // MARK: Blocks

    /// `userID` blocks `otherID`: no new direct chat between them, nothing new in the one they have, no adding each other
    /// to groups. The other is told nothing.
    func block(_ otherID: String, by userID: String) async throws {
        guard Identifier.isValid(otherID), try await self.directory.profiles(of: [otherID])[otherID] != nil else { throw ChatError.userNotFound }
        guard otherID != userID else { throw ChatError.cannotBlockSelf }
        if let chatID = try await self.store.block(otherID, by: userID, now: Timestamp.millis()) {
            self.bus.publish(.chatBlocked(chatID: chatID, blocked: true))
        }
    }

    /// `userID` no longer blocks `otherID` (not blocking them is no error).
    func unblock(_ otherID: String, by userID: String) async throws {
        guard Identifier.isValid(otherID) else { throw ChatError.userNotFound }
        if let (chatID, blocked) = try await self.store.unblock(otherID, by: userID) {
            self.bus.publish(.chatBlocked(chatID: chatID, blocked: blocked))
        }
    }

    /// The people `userID` blocks, the latest first.
    func blocks(of userID: String) async throws -> [PublicUser] {
        let ids = try await self.store.blocks(of: userID)
        let profiles = try await self.directory.profiles(of: ids)
        return ids.compactMap { profiles[$0] }
    }
}
