/// A member's standing in a group: the creator is its owner; owners and admins manage it.
enum GroupRole: String, Sendable, Codable {
    case owner, admin, member

    /// Whether the role may rename the group, set its photo, add and remove members and make admins.
    var manages: Bool { self != .member }
}

/// A group as a change finds it, read under the chat's lock: its members in the order they joined.
struct GroupState: Sendable {
    var chatID: String
    var kind: String
    var name: String?
    var avatarFileID: String?
    var members: [MemberRecord]

    func role(of userID: String) -> GroupRole? {
        self.members.first { $0.userID == userID }?.role
    }
}

/// What one change does to a group, and the system messages that tell it, in order.
struct GroupChange: Sendable {
    /// A group photo set to an uploaded image, or removed.
    enum Photo: Sendable, Equatable {
        case set(fileID: String)
        case removed
    }

    var name: String?
    var photo: Photo?
    var added: [String] = []
    var removed: [String] = []
    var roles: [(userID: String, role: GroupRole)] = []
    var events: [SystemEvent] = []
}

/// The rules of groups, each a pure function from the group as it stands to the change it allows (or the refusal).
enum GroupRules {
    /// The caller's role, after checking they are in the group and that it is one (a direct chat has nothing to manage).
    static func standing(of actorID: String, in state: GroupState) throws -> GroupRole {
        guard let role = state.role(of: actorID) else { throw ChatError.chatNotFound }
        guard state.kind == "group" else { throw ChatError.notAGroup }
        return role
    }

    /// A new name and/or photo: owners and admins only; an unchanged value tells nothing.
    static func update(_ state: GroupState, by actorID: String, name: String?, photo: GroupChange.Photo?) throws -> GroupChange {
        guard try Self.standing(of: actorID, in: state).manages else { throw ChatError.notGroupAdmin }
        var change = GroupChange()
        if let name, name != state.name {
            change.name = name
            change.events.append(SystemEvent(action: "renamed", actorId: actorID, name: name))
        }
        let currentPhoto: GroupChange.Photo = state.avatarFileID.map { .set(fileID: $0) } ?? .removed
        if let photo, photo != currentPhoto {
            change.photo = photo
            change.events.append(SystemEvent(action: "photo", actorId: actorID))
        }
        return change
    }

    /// Adds `userIDs` (already checked as people the caller may add): owners and admins only; members already in are
    /// left alone; the group stays within `maxMembers`.
    static func add(_ userIDs: [String], to state: GroupState, by actorID: String, maxMembers: Int) throws -> GroupChange {
        guard try Self.standing(of: actorID, in: state).manages else { throw ChatError.notGroupAdmin }
        let present = Set(state.members.map(\.userID))
        var added: [String] = []
        for id in userIDs where !present.contains(id) && !added.contains(id) { added.append(id) }
        guard state.members.count + added.count <= maxMembers else {
            throw ChatError.invalidMembers("A group has at most \(maxMembers) members.")
        }
        guard !added.isEmpty else { return GroupChange() }
        return GroupChange(added: added, events: [SystemEvent(action: "added", actorId: actorID, userIds: added)])
    }

    /// Removes `userID`: oneself always (leaving); an owner removes anyone, an admin removes members only.
    static func remove(_ userID: String, from state: GroupState, by actorID: String) throws -> GroupChange {
        let actorRole = try Self.standing(of: actorID, in: state)
        if userID == actorID { return Self.leave(state, actorID: actorID, role: actorRole) }
        guard actorRole.manages else { throw ChatError.notGroupAdmin }
        guard let targetRole = state.role(of: userID) else { throw ChatError.notAMember(userID) }
        guard targetRole == .member || actorRole == .owner else { throw ChatError.notGroupOwner }
        return GroupChange(removed: [userID], events: [SystemEvent(action: "removed", actorId: actorID, userIds: [userID])])
    }

    /// The caller leaves; an owner leaving hands ownership to the longest-standing admin, else the longest-standing member.
    static func leave(_ state: GroupState, actorID: String, role: GroupRole) -> GroupChange {
        var change = GroupChange(removed: [actorID], events: [SystemEvent(action: "left", actorId: actorID)])
        let others = state.members.filter { $0.userID != actorID }
        guard role == .owner, !others.contains(where: { $0.role == .owner }) else { return change }
        guard let heir = others.first(where: { $0.role == .admin }) ?? others.first else { return change }
        change.roles.append((heir.userID, .owner))
        change.events.append(SystemEvent(action: "owner", actorId: actorID, userIds: [heir.userID]))
        return change
    }

    /// Gives `userID` `role`: owners and admins make and unmake admins; only the owner hands over ownership (and becomes
    /// an admin) or changes an admin; the owner's own role changes only by handing it over.
    static func setRole(_ role: GroupRole, of userID: String, in state: GroupState, by actorID: String) throws -> GroupChange {
        let actorRole = try Self.standing(of: actorID, in: state)
        guard actorRole.manages else { throw ChatError.notGroupAdmin }
        guard let targetRole = state.role(of: userID) else { throw ChatError.notAMember(userID) }
        guard targetRole != role else { return GroupChange() }
        switch role {
        case .owner:
            guard actorRole == .owner else { throw ChatError.notGroupOwner }
            return GroupChange(
                roles: [(userID, .owner), (actorID, .admin)],
                events: [SystemEvent(action: "owner", actorId: actorID, userIds: [userID])]
            )
        case .admin, .member:
            if targetRole == .owner { throw userID == actorID ? ChatError.ownerMustHandOver : ChatError.notGroupOwner }
            // An admin may step down and may promote members; demoting another admin is the owner's.
            if targetRole == .admin && userID != actorID && actorRole != .owner { throw ChatError.notGroupOwner }
            return GroupChange(
                roles: [(userID, role)],
                events: [SystemEvent(action: "role", actorId: actorID, userIds: [userID], role: role.rawValue)]
            )
        }
    }
}
