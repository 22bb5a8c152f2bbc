import Foundation

/// One measured number of a scenario, with the target when it has one.
struct Figure: Codable {
    var name: String
    var value: Double
    var unit: String
    /// The target as written, e.g. "≥ 10000" or "≤ 25".
    var target: String?
    /// Whether the value meets the target; nil without a target.
    var met: Bool?

    init(_ name: String, _ value: Double, _ unit: String, atLeast minimum: Double? = nil, atMost maximum: Double? = nil) {
        self.name = name
        self.value = value
        self.unit = unit
        if let minimum {
            self.target = "≥ \(Self.format(minimum))"
            self.met = value >= minimum
        } else if let maximum {
            self.target = "≤ \(Self.format(maximum))"
            self.met = value <= maximum
        }
    }

    static func format(_ value: Double) -> String {
        if value >= 100 || value == value.rounded() { return String(Int(value.rounded())) }
        if value >= 10 { return String(format: "%.1f", value) }
        return String(format: "%.2f", value)
    }
}

/// The outcome of one scenario run: its figures and what the processes used meanwhile.
struct ScenarioResult: Codable {
    var scenario: String
    var parameters: [String: String]
    var figures: [Figure]
    var resources: ResourceUse?
    var notes: [String] = []

    /// The human table of `results`: one row per figure, the resources on each scenario's first row.
    static func table(_ results: [ScenarioResult]) -> String {
        var rows = [["scenario", "figure", "value", "target", "met", "load-gen CPU", "server CPU", "server RSS"]]
        for result in results {
            for (index, figure) in result.figures.enumerated() {
                let resources = index == 0 ? result.resources : nil
                rows.append([
                    index == 0 ? result.scenario : "",
                    figure.name,
                    "\(Figure.format(figure.value)) \(figure.unit)",
                    figure.target.map { "\($0) \(figure.unit)" } ?? "",
                    figure.met.map { $0 ? "yes" : "NO" } ?? "",
                    resources.map { String(format: "%.0f%%", $0.loadGeneratorCPUPercent) } ?? "",
                    resources?.serverCPUPercent.map { String(format: "%.0f%%", $0) } ?? "",
                    resources?.serverRSSMiB.map { String(format: "%.1f MiB", $0) } ?? "",
                ])
            }
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        lines.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "), at: 1)
        for result in results where !result.notes.isEmpty {
            lines.append("")
            lines.append(contentsOf: result.notes.map { "\(result.scenario): \($0)" })
        }
        return lines.joined(separator: "\n")
    }

    /// One line of JSON.
    var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// A run whose deliveries were wrong or incomplete: the scenario fails loudly.
struct CorrectnessFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
