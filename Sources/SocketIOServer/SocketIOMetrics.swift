public import Metrics

/// The Socket.IO server's counters, recorded through the swift-metrics global backend: bootstrap it before the server
/// starts (Parley's process does), or they count nowhere.
public enum SocketIOMetrics {
    /// Sockets disconnected because their outbound queue overflowed (they did not keep up with what was sent to them).
    public static let queueOverflows = Counter(label: "parley_socket_queue_overflows_total")
    /// Events queued for sockets by ``SocketIOServer/emit(_:toUsers:)``, one per socket reached.
    public static let eventsDelivered = Counter(label: "parley_socket_events_delivered_total")

    /// Makes the counters now, so that they are exported (at zero) before anything happens.
    public static func register() {
        _ = (Self.queueOverflows, Self.eventsDelivered)
    }
}
