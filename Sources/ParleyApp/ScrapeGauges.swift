import Foundation
import Metrics
import ParleyCore
import SocketIOServer

/// Gauges read from what they measure when Prometheus scrapes: each costs a system call or a lock, once per scrape, and
/// is never stale.
enum ScrapeGauges {
    /// The bytes available to Parley and the size of the filesystem that holds `directory` (the data folder: SQLite, files,
    /// backups), for the disk-nearly-full alert without node_exporter.
    static func dataFilesystem(_ directory: String) -> @Sendable () -> Void {
        let available = Gauge(label: "parley_data_filesystem_avail_bytes", factory: ParleyMetrics.factory)
        let size = Gauge(label: "parley_data_filesystem_size_bytes", factory: ParleyMetrics.factory)
        return {
            var stats = statvfs()
            // A folder not made yet (a mail-only process) is measured where it will be made.
            var path = directory
            while statvfs(path, &stats) != 0 {
                let parent = (path as NSString).deletingLastPathComponent
                guard !parent.isEmpty, parent != path else { return }
                path = parent
            }
            available.record(Double(stats.f_bavail) * Double(stats.f_frsize))
            size.record(Double(stats.f_blocks) * Double(stats.f_frsize))
        }
    }

    /// The sockets connected to this chat instance, and the users they belong to.
    static func sockets(of server: SocketIOServer) -> @Sendable () -> Void {
        let sockets = Gauge(label: "parley_connected_sockets", factory: ParleyMetrics.factory)
        let users = Gauge(label: "parley_connected_users", factory: ParleyMetrics.factory)
        return {
            sockets.record(server.socketCount)
            users.record(server.userCount)
        }
    }
}
