import Histogram
import PushCore

/// Latencies in microseconds in an HDR histogram (3 significant digits, up to 10 minutes). Children send theirs
/// to the coordinator as recorded (value, count) pairs, which merge exactly.
struct Latency {
    static let highest: UInt64 = 600_000_000

    private(set) var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: Latency.highest, numberOfSignificantValueDigits: .three)

    var count: UInt64 { histogram.totalCount }

    /// Records a duration given in nanoseconds (below 1 µs counts as 1 µs; above 10 minutes as 10 minutes).
    @inline(__always)
    mutating func record(nanos: UInt64) {
        histogram.record(min(max(nanos / 1000, 1), Self.highest))
    }

    mutating func add(_ other: Latency) {
        guard other.count > 0 else { return }
        histogram.add(other.histogram)
    }

    mutating func reset() { histogram.reset() }

    /// The value at `percentile` (0–100) in milliseconds; 0 when nothing was recorded.
    func millis(_ percentile: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    var maxMillis: Double { count == 0 ? 0 : Double(histogram.max) / 1000 }
    var meanMillis: Double { count == 0 ? 0 : histogram.mean / 1000 }

    /// Writes `[value, count, value, count, …]` over the recorded buckets.
    func encode(into writer: inout JSONWriter) {
        writer.array { writer in
            for bucket in histogram.recordedValues() {
                writer.value(bucket.value)
                writer.value(UInt64(bucket.count))
            }
        }
    }

    /// Reads what `encode` wrote; nil or malformed input gives an empty histogram.
    init(decoding value: JSONValue? = nil) {
        guard let items = value?.arrayValue else { return }
        var index = 0
        while index + 1 < items.count {
            if let bucket = items[index].uint64, let count = items[index + 1].uint64 {
                histogram.record(min(bucket, Self.highest), count: count)
            }
            index += 2
        }
    }

    /// `{"count":n,"p50_ms":…,"p99_ms":…,"p999_ms":…,"max_ms":…,"mean_ms":…}` for result files.
    func summary(into writer: inout JSONWriter) {
        writer.object {
            $0.field("count", count)
            $0.field("p50_ms", millis(50), decimals: 3)
            $0.field("p90_ms", millis(90), decimals: 3)
            $0.field("p99_ms", millis(99), decimals: 3)
            $0.field("p999_ms", millis(99.9), decimals: 3)
            $0.field("max_ms", maxMillis, decimals: 3)
            $0.field("mean_ms", meanMillis, decimals: 3)
        }
    }

    /// "p50 0.41 · p99 1.92 · p99.9 3.10 · max 7.55 ms".
    var line: String {
        guard count > 0 else { return "—" }
        return "p50 \(Format.ms(millis(50))) · p99 \(Format.ms(millis(99))) · p99.9 \(Format.ms(millis(99.9)))"
            + " · max \(Format.ms(maxMillis)) ms"
    }
}

extension JSONValue {
    var uint64: UInt64? {
        if case .number(let text) = self { return UInt64(text) ?? Double(text).map { UInt64(max(0, $0)) } }
        return nil
    }

    var int: Int? {
        if case .number(let text) = self { return Int(text) ?? Double(text).map { Int($0) } }
        return nil
    }

    var double: Double? { doubleValue }

    var objectMembers: [(String, JSONValue)] {
        if case .object(let members) = self { return members }
        return []
    }
}
