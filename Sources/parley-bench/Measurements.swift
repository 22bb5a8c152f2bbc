import Foundation
import Histogram
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on the monotonic clock: every process on the machine reads the same one.
enum Monotonic {
    static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

/// A latency histogram in nanoseconds, safe to record into from many tasks.
final class LatencyRecorder: Sendable {
    private let histogram = Mutex(
        Histogram<UInt64>(lowestDiscernibleValue: 1_000, highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
    )

    func record(nanoseconds: UInt64) {
        self.histogram.withLock { _ = $0.record(min(max(nanoseconds, 1_000), 120_000_000_000)) }
    }

    /// The recorded values so far.
    var snapshot: Histogram<UInt64> { self.histogram.withLock { $0 } }
}

extension Histogram<UInt64> {
    /// The value at `percentile` in milliseconds.
    func milliseconds(at percentile: Double) -> Double { Double(self.valueAtPercentile(percentile)) / 1e6 }
    /// The largest value in milliseconds.
    var maxMilliseconds: Double { Double(self.max) / 1e6 }
}

/// CPU time and memory of this process and, when its pid is known, of the server.
struct ResourceSample {
    var wallNanoseconds: UInt64
    var ownCPUNanoseconds: UInt64
    var serverCPUNanoseconds: UInt64?
    var serverRSSBytes: UInt64?

    static func take(serverPID: Int32?) -> ResourceSample {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let own =
            UInt64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000_000
            + UInt64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1_000
        return ResourceSample(
            wallNanoseconds: Monotonic.nanoseconds(),
            ownCPUNanoseconds: own,
            serverCPUNanoseconds: serverPID.flatMap(Self.cpuNanoseconds(of:)),
            serverRSSBytes: serverPID.flatMap(Self.residentBytes(of:))
        )
    }

    /// utime + stime from /proc/<pid>/stat (fields 14 and 15, counted after the parenthesised command name).
    static func cpuNanoseconds(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After ")" the first field is the state (field 3), so utime (14) is at index 11.
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        let ticks = UInt64(sysconf(Int32(_SC_CLK_TCK)))
        return (user + system) * (1_000_000_000 / ticks)
    }

    /// VmRSS from /proc/<pid>/status.
    static func residentBytes(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let number = line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first
            return number.flatMap { UInt64($0) }.map { $0 * 1024 }
        }
        return nil
    }
}

/// What the processes used between two samples.
struct ResourceUse: Codable {
    /// This load generator's CPU, in percent of one core.
    var loadGeneratorCPUPercent: Double
    /// The server's CPU, in percent of one core, when its pid was given.
    var serverCPUPercent: Double?
    /// The server's resident memory at the end, in MiB.
    var serverRSSMiB: Double?

    init(from start: ResourceSample, to end: ResourceSample) {
        let wall = Double(max(end.wallNanoseconds - start.wallNanoseconds, 1))
        self.loadGeneratorCPUPercent = Double(end.ownCPUNanoseconds - start.ownCPUNanoseconds) / wall * 100
        if let before = start.serverCPUNanoseconds, let after = end.serverCPUNanoseconds {
            self.serverCPUPercent = Double(after - before) / wall * 100
        }
        self.serverRSSMiB = end.serverRSSBytes.map { Double($0) / 1_048_576 }
    }

    /// Counts the CPU that other load-generator processes used over `wallNanoseconds` as this one's.
    mutating func addLoadGenerator(cpuNanoseconds: UInt64, over wallNanoseconds: UInt64) {
        self.loadGeneratorCPUPercent += Double(cpuNanoseconds) / Double(max(wallNanoseconds, 1)) * 100
    }
}
