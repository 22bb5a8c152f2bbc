import Foundation

/// Where and how ended spans are sent: OTLP over HTTP with protobuf, configured by OpenTelemetry's own
/// environment variables (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/), so that
/// what a collector's documentation or an operator's injection sets works unchanged. Nothing set: nothing exported.
public struct TraceExportSettings: Sendable, Equatable {
    /// The full URL spans are POSTed to (`…/v1/traces`).
    public var endpoint: String
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`), such as a collector's API key.
    public var headers: [String: String] = [:]
    /// `service.name`; nil: `parley` for all-in-one, `parley-user` and so on for one service.
    public var serviceName: String?
    /// How long one export request may take.
    public var timeout: Duration = .seconds(10)
    /// How long ended spans wait before they are sent, unless a batch fills first.
    public var scheduleDelay: Duration = .seconds(5)
    /// Spans kept waiting at most; beyond, new ones are dropped and counted.
    public var maxQueueSize = 2048
    /// Spans per export request at most.
    public var maxBatchSize = 512

    public init(endpoint: String) {
        self.endpoint = endpoint
    }

    /// The settings `environment` gives, or nil when it configures no export. Throws naming the first bad variable.
    public static func read(_ environment: [String: String]) throws -> TraceExportSettings? {
        let reader = EnvironmentReader(environment: environment)
        if reader.string("OTEL_SDK_DISABLED")?.lowercased() == "true" { return nil }
        if let exporter = reader.string("OTEL_TRACES_EXPORTER")?.lowercased() {
            guard ["otlp", "none"].contains(exporter) else {
                throw ConfigurationError("OTEL_TRACES_EXPORTER", "must be otlp or none (got \"\(exporter.prefix(40))\")")
            }
            if exporter == "none" { return nil }
        }
        let endpoint: String
        if let url = reader.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            // Used as it is.
            endpoint = try Self.httpURL(url, variable: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        } else if let url = reader.string("OTEL_EXPORTER_OTLP_ENDPOINT") {
            // The base of every signal's path.
            let base = try Self.httpURL(url, variable: "OTEL_EXPORTER_OTLP_ENDPOINT")
            endpoint = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/traces"
        } else {
            return nil
        }
        var settings = TraceExportSettings(endpoint: endpoint)
        for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            guard let wanted = reader.string(name) else { continue }
            // http/json: swift-otel 1.6 writes trace and span ids in base64 where OTLP's JSON says hex, which a
            // collector refuses; gRPC is not built in.
            guard wanted == "http/protobuf" else {
                throw ConfigurationError(
                    name,
                    "Parley exports OTLP over HTTP with protobuf only: set http/protobuf or leave it unset (got \"\(wanted.prefix(40))\")"
                )
            }
            break
        }
        settings.serviceName = reader.string("OTEL_SERVICE_NAME")
        for name in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"] {
            guard let list = reader.string(name) else { continue }
            for (key, value) in try Self.headers(list, variable: name) { settings.headers[key] = value }
        }
        let timeout =
            try reader.int("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", in: 1...600_000) ?? reader.int("OTEL_EXPORTER_OTLP_TIMEOUT", in: 1...600_000)
        if let timeout { settings.timeout = .milliseconds(timeout) }
        if let delay = try reader.int("OTEL_BSP_SCHEDULE_DELAY", in: 1...600_000) { settings.scheduleDelay = .milliseconds(delay) }
        settings.maxQueueSize = try reader.int("OTEL_BSP_MAX_QUEUE_SIZE", in: 1...1_000_000) ?? settings.maxQueueSize
        settings.maxBatchSize = try reader.int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", in: 1...1_000_000) ?? settings.maxBatchSize
        guard settings.maxBatchSize <= settings.maxQueueSize else {
            throw ConfigurationError("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "must be at most OTEL_BSP_MAX_QUEUE_SIZE (\(settings.maxQueueSize))")
        }
        return settings
    }

    static func httpURL(_ text: String, variable: String) throws -> String {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigurationError(variable, "must be an http:// or https:// URL (got \"\(text.prefix(80))\")")
        }
        return text
    }

    /// `key1=value1,key2=value2`, values percent-encoded (W3C Baggage's format, as the specification says).
    static func headers(_ list: String, variable: String) throws -> [(String, String)] {
        try list.split(separator: ",").map { entry in
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, let value = parts[1].removingPercentEncoding,
                parts[0].utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }),
                !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A })
            else {
                throw ConfigurationError(variable, "must be key=value pairs separated by commas")
            }
            return (parts[0], value)
        }
    }
}
