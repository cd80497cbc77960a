/// Token buckets by key (an API key, a client address), one policy for all, in a table of bounded size.
///
/// A bucket that has refilled to its burst says nothing a missing bucket would not, so such idle buckets are
/// dropped by a sweep that checks two of the oldest keys on every `take`: constant work per call, and an idle key
/// leaves the table within about half a table's worth of takes. When the table is full of keys still being
/// limited, a new key pushes out the oldest one, which then starts again with a full bucket: under a flood of
/// addresses the limiter forgets rather than refusing addresses it has never seen (fails open, stays bounded).
public struct KeyedLimiter<Key: Hashable> {
    /// The policy of every bucket.
    public let limit: RateLimit
    /// The most keys kept.
    public let capacity: Int

    private var levels: [Key: TokenBucket.Level] = [:]
    /// Every key of `levels` once, oldest first from `head`; the sweep walks it as a ring.
    private var order: [Key] = []
    private var head = 0

    /// Keys checked by the sweep on each take.
    static var sweepStep: Int { 2 }

    /// A limiter for `limit` keeping at most `capacity` keys (at least 1).
    public init(_ limit: RateLimit, capacity: Int = 65_536) {
        self.limit = limit
        self.capacity = max(1, capacity)
    }

    /// Keys with a bucket now.
    public var count: Int { levels.count }

    /// Takes a token from `key`'s bucket: true to go ahead, false when over the limit. Always true, and nothing
    /// stored, when unlimited.
    public mutating func take(_ key: Key, now: UInt64) -> Bool {
        if limit.isUnlimited { return true }
        sweep(now: now)
        if let index = levels.index(forKey: key) {
            return levels.values[index].take(limit, now: now)
        }
        if levels.count >= capacity { evictOldest() }
        var level = TokenBucket.Level(full: limit, now: now)
        let taken = level.take(limit, now: now)
        levels[key] = level
        order.append(key)
        return taken
    }

    /// Whole seconds until a take for `key` would succeed (`Retry-After`); 0 for a key without a bucket.
    public func retryAfter(_ key: Key, now: UInt64) -> Int {
        levels[key]?.retryAfter(limit, now: now) ?? 0
    }

    /// Drops every bucket (a reload that changes the policy builds a new limiter instead).
    public mutating func removeAll() {
        levels.removeAll()
        order.removeAll()
        head = 0
    }

    /// Checks the oldest keys: a full bucket goes, another goes to the back of the ring.
    private mutating func sweep(now: UInt64) {
        for _ in 0..<min(Self.sweepStep, order.count - head) {
            let key = order[head]
            head += 1
            if levels[key]!.isFull(limit, now: now) {
                levels[key] = nil
            } else {
                order.append(key)
            }
        }
        compact()
    }

    private mutating func evictOldest() {
        guard head < order.count else { return }
        levels[order[head]] = nil
        head += 1
        compact()
    }

    /// Drops the walked part of `order` once it is half of it: amortized O(1) per step.
    private mutating func compact() {
        if head > 32, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
