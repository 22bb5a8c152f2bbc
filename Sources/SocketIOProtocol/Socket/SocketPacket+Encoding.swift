extension SocketPacket {
    /// The packet as text: `<type>[<namespace>,][<ack id>][<data>]`, e.g. `2/admin,13["bar"]`.
    ///
    /// This is the payload of an Engine.IO `message` packet, which adds the leading `4` on the wire.
    public func encoded() -> String {
        var text = ""
        text.reserveCapacity(1 + self.namespace.utf8.count + 21 + (self.data?.utf8.count ?? 0))
        text.unicodeScalars.append(Unicode.Scalar(UInt8(ascii: "0") + self.type.rawValue))
        // The main namespace is implied; an empty one is treated the same, as the reference encoder does.
        if !self.namespace.isEmpty && self.namespace != Self.mainNamespace {
            text += self.namespace
            text += ","
        }
        if let ackID = self.ackID {
            text += String(ackID)
        }
        if let data = self.data {
            text += data
        }
        return text
    }
}

extension SocketPacket {
    /// The CONNECT reply that admits a client to `namespace`, carrying its socket id: `40{"sid":"…"}`.
    public static func connectAccepted(sid: String, namespace: String = mainNamespace) -> SocketPacket {
        SocketPacket(type: .connect, namespace: namespace, data: "{\"sid\":" + JSONText.quoted(sid) + "}")
    }

    /// The CONNECT_ERROR that refuses a client: `{"message":"…"}`, plus `"data"` when detail is given as JSON.
    public static func connectRefused(message: String, encodedData: String? = nil, namespace: String = mainNamespace) -> SocketPacket {
        var data = "{\"message\":" + JSONText.quoted(message)
        if let encodedData {
            data += ",\"data\":" + encodedData
        }
        return SocketPacket(type: .connectError, namespace: namespace, data: data + "}")
    }

    /// An EVENT `["name",arg…]` built from already-encoded JSON arguments, so it can be encoded once for many sockets.
    public static func event(
        _ name: String,
        encodedArguments: [String] = [],
        namespace: String = mainNamespace,
        ackID: UInt64? = nil
    ) -> SocketPacket {
        let data = SocketEvent.dataText(name: name, encodedArguments: encodedArguments)
        return SocketPacket(type: .event, namespace: namespace, ackID: ackID, data: data)
    }

    /// The ACK answering `ackID` with already-encoded JSON arguments: `3<id>[arg…]`.
    public static func ack(_ ackID: UInt64, encodedArguments: [String], namespace: String = mainNamespace) -> SocketPacket {
        SocketPacket(type: .ack, namespace: namespace, ackID: ackID, data: JSONText.array(encodedArguments))
    }

    /// A DISCONNECT from `namespace`.
    public static func disconnect(namespace: String = mainNamespace) -> SocketPacket {
        SocketPacket(type: .disconnect, namespace: namespace)
    }
}
