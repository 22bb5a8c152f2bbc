/// A JSON object's members, in order, each key at most once.
public struct JSONObject: Sendable, Hashable {
    /// The members in their order.
    public private(set) var members: [(key: String, value: JSONValue)]

    /// An empty object.
    public init() {
        self.members = []
    }

    /// An object from `members` in order; a repeated key keeps its first position and its last value.
    public init(_ members: [(key: String, value: JSONValue)]) {
        self.members = []
        var positions: [String: Int] = [:]
        for member in members {
            if let position = positions[member.key] {
                self.members[position].value = member.value
            } else {
                positions[member.key] = self.members.count
                self.members.append(member)
            }
        }
    }

    /// Wraps members already known to have unique keys (the parser checks).
    init(uniqueMembers: [(key: String, value: JSONValue)]) {
        self.members = uniqueMembers
    }

    /// The keys in order.
    public var keys: [String] { self.members.map(\.key) }

    /// The number of members.
    public var count: Int { self.members.count }

    /// The value for `key`; setting nil removes the member, setting a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get {
            self.members.first { $0.key == key }?.value
        }
        set {
            let position = self.members.firstIndex { $0.key == key }
            switch (position, newValue) {
            case (let position?, let value?): self.members[position].value = value
            case (let position?, nil): self.members.remove(at: position)
            case (nil, let value?): self.members.append((key: key, value: value))
            case (nil, nil): break
            }
        }
    }

    /// Objects are equal when they have the same members in the same order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// Hashes the members in order.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.members.count)
        for member in self.members {
            hasher.combine(member.key)
            hasher.combine(member.value)
        }
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// An object, keys in the literal's order.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { (key: $0.0, value: $0.1) })
    }
}
