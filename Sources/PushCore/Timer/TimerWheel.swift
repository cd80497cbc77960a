/// A hashed timing wheel: O(1) to schedule, O(1) per expiry, one wheel per loop instead of a timer per
/// connection (SPEC §2 asks timers to cost O(1) per connection per event).
///
/// Entries are not cancelled or moved when a deadline changes. The owner keeps each element's real deadline
/// (for a connection: last activity + idle timeout) and, when an entry fires early or for a closed
/// connection, simply reschedules or drops it. Activity on a connection therefore costs one store, not a
/// wheel operation. A deadline further away than the wheel's span is parked in its last slot and fires
/// early, to be rescheduled by the same rule.
/// Due entries are handed out as a list rather than through a callback, so the owner can reschedule them
/// while walking it.
public struct TimerWheel<Element> {
    private var slots: [[Element]]
    private let mask: UInt64
    /// The last tick that has been processed.
    public private(set) var currentTick: UInt64
    /// Entries scheduled and not yet fired.
    public private(set) var count = 0

    /// - Parameters:
    ///   - slotCount: slots in the wheel, rounded up to a power of two; the span is `slotCount` ticks.
    ///   - startTick: the tick considered already processed.
    public init(slotCount: Int, startTick: UInt64 = 0) {
        var size = 1
        while size < max(slotCount, 2) { size <<= 1 }
        slots = Array(repeating: [], count: size)
        mask = UInt64(size - 1)
        currentTick = startTick
    }

    /// The furthest tick ahead of `currentTick` an entry can be placed at.
    public var span: UInt64 { mask }

    /// Schedules `element` to fire once `advance` reaches `tick` (clamped to the next tick at the earliest
    /// and to the wheel's span at the latest).
    public mutating func schedule(_ element: Element, at tick: UInt64) {
        let target = min(max(tick, currentTick + 1), currentTick + span)
        slots[Int(target & mask)].append(element)
        count += 1
    }

    /// Processes every tick up to and including `tick` and appends each due entry to `due`, in deadline order
    /// (entries of one tick in scheduling order). After a jump longer than the span, every entry is due.
    public mutating func advance(to tick: UInt64, into due: inout [Element]) {
        guard tick > currentTick else { return }
        let steps = min(tick - currentTick, span + 1)
        let first = currentTick + 1
        for step in 0..<steps {
            let index = Int((first + step) & mask)
            guard !slots[index].isEmpty else { continue }
            count -= slots[index].count
            due.append(contentsOf: slots[index])
            // Keep a small slot's storage for its next round; let a big one go.
            slots[index].removeAll(keepingCapacity: slots[index].count <= 1024)
        }
        currentTick = tick
    }
}
