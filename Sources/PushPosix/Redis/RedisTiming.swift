/// The send times of the commands in flight on one connection, oldest first. Redis answers in order, so each
/// reply pops the head, and the head alone says whether the connection is stalled. A growable ring: appending
/// and popping never move the other entries.
public struct SendTimes {
    private var storage = [Double](repeating: 0, count: 64)
    private var head = 0
    private(set) var count = 0

    public var oldest: Double? { count == 0 ? nil : storage[head] }

    public mutating func append(_ time: Double) {
        if count == storage.count { grow() }
        storage[(head + count) & (storage.count - 1)] = time
        count += 1
    }

    /// Removes and returns the oldest send time.
    public mutating func popOldest() -> Double? {
        guard count > 0 else { return nil }
        let time = storage[head]
        head = (head + 1) & (storage.count - 1)
        count -= 1
        return time
    }

    public mutating func removeAll() {
        head = 0
        count = 0
    }

    /// Doubles the capacity (always a power of two, so indices wrap with a mask), unwrapping the ring.
    private mutating func grow() {
        var larger = [Double](repeating: 0, count: storage.count * 2)
        for index in 0..<count { larger[index] = storage[(head + index) & (storage.count - 1)] }
        storage = larger
        head = 0
    }
}

/// The last `capacity` round-trip times, in seconds, for percentiles on demand (metrics, the admin socket).
public struct LatencyRing {
    private var samples: [Double]
    private var next = 0
    private var filled = false

    public init(capacity: Int = 1024) {
        samples = [Double](repeating: 0, count: capacity)
    }

    public mutating func record(_ seconds: Double) {
        samples[next] = seconds
        next += 1
        if next == samples.count {
            next = 0
            filled = true
        }
    }

    /// The `p`th percentile (0–100, nearest rank) of the recorded samples, or nil before the first one.
    public func percentile(_ p: Double) -> Double? {
        let count = filled ? samples.count : next
        guard count > 0 else { return nil }
        let sorted = samples[..<count].sorted()
        let rank = Int((min(max(p, 0), 100) / 100 * Double(count)).rounded(.up))
        return sorted[max(rank, 1) - 1]
    }
}
