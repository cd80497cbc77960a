/// A histogram over fixed buckets, as Prometheus exposes one: each observation lands in the first bucket whose
/// upper bound is at least the value (the last bucket, +Inf, takes the rest), plus a running sum and count.
///
/// Fixed bounds make histograms of different workers, and of the same worker at different times, add up and
/// subtract bucket by bucket: the master sums the workers' histograms for `/metrics` and subtracts an older total
/// from a newer one for percentiles over the last seconds. Observing is a short search over a dozen bounds and
/// allocates nothing.
public struct Histogram: Sendable, Equatable {
    /// Upper bounds of the finite buckets, ascending; the +Inf bucket comes after them.
    public let bounds: [Double]
    /// Observations per bucket (not cumulative); one more entry than `bounds`, the last for +Inf.
    public private(set) var counts: [UInt64]
    /// Sum of every observed value.
    public private(set) var sum: Double = 0
    /// Number of observations.
    public private(set) var count: UInt64 = 0

    /// Bounds for latencies in seconds, from half a millisecond to ten seconds (Prometheus's default buckets with a
    /// finer low end: a push is usually delivered within a millisecond or two).
    public static let latencyBounds: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    /// An empty histogram; `bounds` must be ascending and finite.
    public init(bounds: [Double] = Histogram.latencyBounds) {
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds must ascend")
        self.bounds = bounds
        counts = [UInt64](repeating: 0, count: bounds.count + 1)
    }

    /// Adds one observation. NaN is ignored (it has no bucket); negative values land in the first bucket.
    public mutating func observe(_ value: Double) {
        guard !value.isNaN else { return }
        var low = 0
        var high = bounds.count
        while low < high {
            let mid = (low + high) / 2
            if bounds[mid] < value { low = mid + 1 } else { high = mid }
        }
        counts[low] += 1
        sum += value
        count += 1
    }

    /// Adds `other`'s observations (same bounds; a histogram with other bounds is ignored).
    public mutating func add(_ other: Histogram) {
        guard other.bounds == bounds else { return }
        for index in counts.indices { counts[index] += other.counts[index] }
        sum += other.sum
        count += other.count
    }

    /// The observations made since `earlier`, a previous state of the same series. Buckets that went down (the
    /// series was reset meanwhile) count as zero.
    public func subtracting(_ earlier: Histogram) -> Histogram {
        guard earlier.bounds == bounds else { return self }
        var result = Histogram(bounds: bounds)
        for index in counts.indices {
            result.counts[index] = counts[index] >= earlier.counts[index] ? counts[index] - earlier.counts[index] : 0
        }
        result.count = result.counts.reduce(0, +)
        result.sum = result.count == 0 ? 0 : max(0, sum - earlier.sum)
        return result
    }

    /// Observations at or below each bound, the last entry (+Inf) being `count`: Prometheus's `_bucket` series.
    public var cumulativeCounts: [UInt64] {
        var running: UInt64 = 0
        return counts.map {
            running += $0
            return running
        }
    }

    /// The `q`-quantile (0...1) estimated as Prometheus's `histogram_quantile` does: find the bucket holding the
    /// rank and interpolate linearly inside it (the first bucket starts at 0). A rank in the +Inf bucket gives the
    /// highest finite bound. Nil when there is no observation.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0, !q.isNaN else { return nil }
        let rank = min(max(q, 0), 1) * Double(count)
        var below: UInt64 = 0
        for (index, bucket) in counts.enumerated() {
            let through = below + bucket
            if Double(through) >= rank && bucket > 0 {
                guard index < bounds.count else { return bounds.last ?? 0 }
                let lower = index == 0 ? 0 : bounds[index - 1]
                let upper = bounds[index]
                return lower + (upper - lower) * (rank - Double(below)) / Double(bucket)
            }
            below = through
        }
        return bounds.last ?? 0
    }
}

extension Histogram {
    /// Writes `{"c":[per-bucket counts],"s":sum}` (the bounds are known to both ends).
    public func write(to writer: inout JSONWriter) {
        writer.object { object in
            object.key("c")
            object.array { array in counts.forEach { array.value($0) } }
            object.key("s")
            object.value(sum)
        }
    }

    /// Reads what `write(to:)` wrote, for histograms with `bounds`; nil when the shape does not match.
    public init?(json: JSONValue?, bounds: [Double] = Histogram.latencyBounds) {
        guard let list = json?["c"]?.arrayValue, list.count == bounds.count + 1 else { return nil }
        self.init(bounds: bounds)
        for (index, value) in list.enumerated() {
            guard let number = value.int64Value, number >= 0 else { return nil }
            counts[index] = UInt64(number)
        }
        count = counts.reduce(0, +)
        sum = json?["s"]?.doubleValue ?? 0
    }
}
