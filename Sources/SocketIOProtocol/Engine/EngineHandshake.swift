/// The payload of the `open` packet: the session id and the timing the client must follow.
public struct EngineHandshake: Sendable, Hashable {
    /// The Engine.IO session id, sent back by the client as `?sid=`.
    public var sid: String
    /// The transports the client may upgrade to: `["websocket"]` on polling, `[]` on a WebSocket session.
    public var upgrades: [String]
    /// Milliseconds between the server's pings.
    public var pingInterval: Int
    /// Milliseconds the server waits for a pong (and the client's slack after `pingInterval`).
    public var pingTimeout: Int
    /// The largest polling body, in bytes, the client may send.
    public var maxPayload: Int

    /// Creates a handshake; the defaults are Engine.IO's and Parley's contract values.
    public init(
        sid: String,
        upgrades: [String],
        pingInterval: Int = 25000,
        pingTimeout: Int = 20000,
        maxPayload: Int = 1_000_000
    ) {
        self.sid = sid
        self.upgrades = upgrades
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
    }

    /// The handshake as compact JSON, keys in the protocol document's order.
    public func jsonText() -> String {
        var text = "{\"sid\":" + JSONText.quoted(self.sid)
        text += ",\"upgrades\":" + JSONText.array(self.upgrades.map(JSONText.quoted))
        text += ",\"pingInterval\":" + String(self.pingInterval)
        text += ",\"pingTimeout\":" + String(self.pingTimeout)
        text += ",\"maxPayload\":" + String(self.maxPayload) + "}"
        return text
    }

    /// Reads a handshake from its JSON; unknown keys are ignored, the five known ones are required.
    public init(json: String) throws(EngineDecodingError) {
        guard
            let object = (try? JSONValue(parsing: json))?.objectValue,
            let sid = object["sid"]?.stringValue,
            let upgradeValues = object["upgrades"]?.arrayValue,
            let pingInterval = object["pingInterval"]?.intValue,
            let pingTimeout = object["pingTimeout"]?.intValue,
            let maxPayload = object["maxPayload"]?.intValue
        else {
            throw .invalidHandshake
        }
        var upgrades: [String] = []
        for value in upgradeValues {
            guard let upgrade = value.stringValue else { throw .invalidHandshake }
            upgrades.append(upgrade)
        }
        self.init(sid: sid, upgrades: upgrades, pingInterval: pingInterval, pingTimeout: pingTimeout, maxPayload: maxPayload)
    }
}
