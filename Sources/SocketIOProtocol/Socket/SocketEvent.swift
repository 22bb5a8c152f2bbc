/// An EVENT's payload split into its name and arguments: `["sendMessage",{…}]`.
public struct SocketEvent: Sendable, Hashable {
    /// The event name, the array's first item.
    public var name: String
    /// The arguments after the name.
    public var arguments: [JSONValue]

    /// Creates an event; `name` must not be one of `reservedNames`.
    public init(name: String, arguments: [JSONValue] = []) {
        self.name = name
        self.arguments = arguments
    }

    /// Names the Socket.IO client keeps for itself: an EVENT carrying one is a protocol error.
    public static let reservedNames: Set<String> = [
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    ]

    /// Parses an EVENT packet's data; the name must be a string and not a reserved one.
    public init(parsing data: String, maxDepth: Int = JSONValue.defaultMaxDepth) throws(SocketEventError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: data, maxDepth: maxDepth)
        } catch {
            throw .invalidJSON(error)
        }
        guard case .array(let items) = value else { throw .notAnArray }
        guard let first = items.first else { throw .missingName }
        guard case .string(let name) = first else { throw .nameNotAString }
        guard !Self.reservedNames.contains(name) else { throw .reservedName(name) }
        self.init(name: name, arguments: Array(items.dropFirst()))
    }

    /// The event as EVENT data: `["name",arg…]`.
    public func dataText() -> String {
        Self.dataText(name: self.name, encodedArguments: self.arguments.map { $0.jsonText() })
    }

    /// EVENT data `["name",arg…]` from already-encoded JSON arguments, which are written as they are.
    public static func dataText(name: String, encodedArguments: [String]) -> String {
        assert(!Self.reservedNames.contains(name), "'\(name)' is reserved by Socket.IO clients")
        return JSONText.array([JSONText.quoted(name)] + encodedArguments)
    }
}

/// Why an EVENT's data is not `["name",arg…]`.
public enum SocketEventError: Error, Sendable, Hashable {
    /// The data is not valid JSON.
    case invalidJSON(JSONParseError)
    /// The data is JSON but not an array.
    case notAnArray
    /// The array is empty, so there is no event name.
    case missingName
    /// The first item is not a string.
    case nameNotAString
    /// The name is reserved by Socket.IO clients (`connect`, `disconnect`, …).
    case reservedName(String)
}
