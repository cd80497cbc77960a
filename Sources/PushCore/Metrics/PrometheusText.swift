/// Writes Prometheus's text exposition format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): per metric family a `# HELP` and a `# TYPE`
/// line, then its samples, `name{label="value",…} value`, one a line.
public struct PrometheusText: Sendable {
    /// A metric family's type.
    public enum Kind: String, Sendable {
        case counter
        case gauge
        case histogram
    }

    /// The `Content-Type` of a response carrying this format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public private(set) var bytes: [UInt8] = []

    public init() {}

    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        append("# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n")
    }

    /// One sample line.
    public mutating func sample(_ name: String, _ value: Double, labels: [(String, String)] = []) {
        append(name)
        appendLabels(labels)
        append(" \(Self.format(value))\n")
    }

    /// A family with one unlabelled sample.
    public mutating func single(_ name: String, _ kind: Kind, help: String, _ value: Double) {
        family(name, kind, help: help)
        sample(name, value)
    }

    /// A histogram's samples: cumulative `_bucket{le=…}` lines ending with `+Inf`, then `_sum` and `_count`.
    public mutating func histogram(_ name: String, _ histogram: Histogram, labels: [(String, String)] = []) {
        let cumulative = histogram.cumulativeCounts
        for (index, running) in cumulative.enumerated() {
            let bound = index < histogram.bounds.count ? Self.format(histogram.bounds[index]) : "+Inf"
            sample(name + "_bucket", Double(running), labels: labels + [("le", bound)])
        }
        sample(name + "_sum", histogram.sum, labels: labels)
        sample(name + "_count", Double(histogram.count), labels: labels)
    }

    /// A value as Prometheus (and Go's `strconv.FormatFloat(v, 'g', -1, 64)`) writes it: integers without a
    /// fraction, `+Inf`, `-Inf`, `NaN`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// A label value with `\`, `"` and newlines escaped.
    static func escapeLabel(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// HELP text with `\` and newlines escaped (quotes stay as they are there).
    static func escapeHelp(_ text: String) -> String {
        text.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
    }

    private mutating func appendLabels(_ labels: [(String, String)]) {
        guard !labels.isEmpty else { return }
        append("{")
        append(labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ","))
        append("}")
    }

    private mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }
}

extension String {
    /// Every occurrence of `target` replaced (PushCore does not import Foundation).
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self {
            if character == target { out += replacement } else { out.append(character) }
        }
        return out
    }
}
