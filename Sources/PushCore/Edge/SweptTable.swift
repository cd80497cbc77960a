/// A dictionary of bounded size whose idle entries are dropped a few at a time: the table behind `KeyedLimiter`
/// and `AutoBan`, where the outside world picks the keys (client addresses) and must not grow memory at will.
///
/// Keys are kept once each in a ring, oldest first. Every `sweep` checks the `step` oldest: an idle entry is
/// dropped, another goes to the back of the ring. That is constant work per call, and an idle entry leaves
/// within one pass of the ring, about `count / step` calls. A new key at `capacity` pushes out the oldest entry,
/// idle or not.
struct SweptTable<Key: Hashable, Value> {
    /// The most entries kept.
    let capacity: Int
    /// Entries checked per sweep.
    static var step: Int { 2 }

    private(set) var entries: [Key: Value] = [:]
    /// Every key of `entries` once, oldest first from `head`; the walked part before `head` is dropped in bulk.
    private var order: [Key] = []
    private var head = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { entries.count }

    subscript(key: Key) -> Value? { entries[key] }

    /// Changes the entry for `key` in place, if there is one; returns false when there is none.
    mutating func update<Result>(_ key: Key, _ change: (inout Value) -> Result) -> Result? {
        guard let index = entries.index(forKey: key) else { return nil }
        return change(&entries.values[index])
    }

    /// Adds an entry for a key not in the table, pushing out the oldest entry when full.
    mutating func insert(_ key: Key, _ value: Value) {
        if entries.count >= capacity, head < order.count {
            entries[order[head]] = nil
            head += 1
        }
        entries[key] = value
        order.append(key)
        compact()
    }

    /// Checks the oldest entries and drops those `isIdle` says are.
    mutating func sweep(_ isIdle: (Value) -> Bool) {
        for _ in 0..<min(Self.step, order.count - head) {
            let key = order[head]
            head += 1
            if isIdle(entries[key]!) {
                entries[key] = nil
            } else {
                order.append(key)
            }
        }
        compact()
    }

    mutating func removeAll() {
        entries.removeAll()
        order.removeAll()
        head = 0
    }

    /// Drops the walked part of the ring once it is most of the array: amortized O(1) per step.
    private mutating func compact() {
        if head > 32, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
