import Foundation
public import Logging

/// Writes one JSON object per line to standard output: `timestamp`, `level`, `label`, `message`, then the metadata.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    /// Metadata of the moment on every line (the current trace's ids).
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    /// Creates a handler for `label` at `level`.
    public init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = #"{"timestamp":"# + JSONText.quote(Timestamp.iso8601(millis: Timestamp.millis()))
        line += #","level":"# + JSONText.quote(event.level.rawValue)
        line += #","label":"# + JSONText.quote(self.label)
        line += #","message":"# + JSONText.quote(event.message.description)
        var merged = self.metadataProvider?.get() ?? [:]
        merged.merge(self.metadata) { _, new in new }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for key in merged.keys.sorted() {
            line += "," + JSONText.quote(key) + ":" + Self.render(merged[key]!)
        }
        line += "}\n"
        StandardOutput.write(line)
    }

    static func render(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): return JSONText.quote(string)
        case .stringConvertible(let convertible):
            if let number = convertible as? any BinaryInteger { return "\(number)" }
            if let number = convertible as? Double, number.isFinite { return "\(number)" }
            if let flag = convertible as? Bool { return flag ? "true" : "false" }
            return JSONText.quote(convertible.description)
        case .array(let values): return "[" + values.map(Self.render).joined(separator: ",") + "]"
        case .dictionary(let values):
            return "{" + values.keys.sorted().map { JSONText.quote($0) + ":" + Self.render(values[$0]!) }.joined(separator: ",") + "}"
        }
    }
}

/// Writes readable lines for a terminal: `time level message key=value …`.
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    /// Metadata of the moment on every line (the current trace's ids).
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    /// Creates a handler for `label` at `level`.
    public init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = self.metadataProvider?.get() ?? [:]
        merged.merge(self.metadata) { _, new in new }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = merged.keys.sorted().map { "\($0)=\(merged[$0]!)" }.joined(separator: " ")
        let time = Timestamp.iso8601(millis: Timestamp.millis())
        StandardOutput.write("\(time) \(event.level.rawValue.uppercased()) [\(self.label)] \(event.message)\(fields.isEmpty ? "" : " " + fields)\n")
    }
}

/// Installs the process-wide log handler once.
public enum ParleyLogging {
    /// Bootstraps swift-log with the configured format and level; every line carries the current trace's ids.
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap(
            { label, provider in
                switch format {
                case .json: JSONLogHandler(label: label, level: level, metadataProvider: provider)
                case .text: TextLogHandler(label: label, level: level, metadataProvider: provider)
                }
            },
            metadataProvider: .trace
        )
    }
}

/// Serialises whole lines onto standard output so lines from concurrent tasks never interleave.
enum StandardOutput {
    private static let lock = NSLock()

    static func write(_ line: String) {
        var line = line
        self.lock.lock()
        defer { self.lock.unlock() }
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
