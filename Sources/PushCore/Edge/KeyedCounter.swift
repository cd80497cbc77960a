/// Open connections by key (a client address) against a maximum: `limits.max_conns_per_ip`. One increment at
/// accept, one decrement at close; a key whose count falls to 0 is removed, so the table holds only keys with
/// connections open.
public struct KeyedCounter<Key: Hashable> {
    /// The most per key; 0 means no maximum (and nothing is counted).
    public let maximum: Int

    private var counts: [Key: Int] = [:]

    /// A counter allowing `maximum` per key; 0 for no maximum.
    public init(maximum: Int) {
        precondition(maximum >= 0, "a maximum is not negative")
        self.maximum = maximum
    }

    /// One worker's share of an instance's `maximum` split between `workers` processes that keep no shared state:
    /// divided rounded up, at least 1 (so an address is never refused below the instance's maximum on a worker of
    /// its own); 0 (no maximum) stays 0.
    public static func share(of maximum: Int, workers: Int) -> Int {
        guard maximum > 0 else { return 0 }
        let workers = max(1, workers)
        return (maximum + workers - 1) / workers
    }

    /// Counts one more for `key` if that stays within the maximum: true to accept, false to refuse (and nothing
    /// counted, so a refused connection must not call `decrement`).
    public mutating func increment(_ key: Key) -> Bool {
        if maximum == 0 { return true }
        let current = counts[key, default: 0]
        guard current < maximum else { return false }
        counts[key] = current + 1
        return true
    }

    /// Counts one less for `key`, at its close; a key not counted is left alone.
    public mutating func decrement(_ key: Key) {
        guard maximum != 0, let index = counts.index(forKey: key) else { return }
        counts.values[index] -= 1
        if counts.values[index] <= 0 { counts.remove(at: index) }
    }

    /// Open connections counted for `key`.
    public func count(_ key: Key) -> Int { counts[key] ?? 0 }

    /// Keys with connections counted.
    public var count: Int { counts.count }
}
