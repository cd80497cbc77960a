/// Token buckets by key (an API key, a client address), one policy for all, in a table of bounded size.
///
/// A bucket that has refilled to its burst says nothing a missing bucket would not, so such idle buckets are
/// dropped by a sweep that checks two of the oldest keys on every `take` (`SweptTable`): constant work per call,
/// and an idle key leaves the table within about half a table's worth of takes. When the table is full of keys
/// still being limited, a new key pushes out the oldest one, which then starts again with a full bucket: under a
/// flood of addresses the limiter forgets rather than refusing addresses it has never seen (fails open, stays
/// bounded).
public struct KeyedLimiter<Key: Hashable> {
    /// The policy of every bucket.
    public let limit: RateLimit

    private var table: SweptTable<Key, TokenBucket.Level>

    /// A limiter for `limit` keeping at most `capacity` keys (at least 1).
    public init(_ limit: RateLimit, capacity: Int = 65_536) {
        self.limit = limit
        self.table = SweptTable(capacity: capacity)
    }

    /// The most keys kept.
    public var capacity: Int { table.capacity }

    /// Keys with a bucket now.
    public var count: Int { table.count }

    /// Takes a token from `key`'s bucket: true to go ahead, false when over the limit. Always true, and nothing
    /// stored, when unlimited.
    public mutating func take(_ key: Key, now: UInt64) -> Bool {
        if limit.isUnlimited { return true }
        let limit = self.limit
        table.sweep { $0.isFull(limit, now: now) }
        if let taken = table.update(key, { $0.take(limit, now: now) }) { return taken }
        var level = TokenBucket.Level(full: limit, now: now)
        let taken = level.take(limit, now: now)
        table.insert(key, level)
        return taken
    }

    /// Whole seconds until a take for `key` would succeed (`Retry-After`); 0 for a key without a bucket.
    public func retryAfter(_ key: Key, now: UInt64) -> Int {
        table[key]?.retryAfter(limit, now: now) ?? 0
    }

    /// Drops every bucket.
    public mutating func removeAll() { table.removeAll() }
}
