import Testing

@testable import PushCore

@Suite struct TimerWheelTests {
    /// An entry fires at its tick, not before.
    @Test func firesAtDeadline() {
        var wheel = TimerWheel<Int>(slotCount: 16)
        wheel.schedule(1, at: 5)
        var due: [Int] = []
        wheel.advance(to: 4, into: &due)
        #expect(due.isEmpty)
        wheel.advance(to: 5, into: &due)
        #expect(due == [1])
        #expect(wheel.count == 0)
    }

    /// Entries come out in deadline order across ticks.
    @Test func ordersByDeadline() {
        var wheel = TimerWheel<Int>(slotCount: 64)
        for (value, tick) in [(3, 30), (1, 10), (2, 20), (4, 30)] { wheel.schedule(value, at: UInt64(tick)) }
        var due: [Int] = []
        wheel.advance(to: 40, into: &due)
        #expect(due == [1, 2, 3, 4])
    }

    /// A deadline in the past fires on the next tick.
    @Test func pastDeadlineFiresNext() {
        var wheel = TimerWheel<Int>(slotCount: 8, startTick: 100)
        wheel.schedule(9, at: 3)
        var due: [Int] = []
        wheel.advance(to: 101, into: &due)
        #expect(due == [9])
    }

    /// A deadline beyond the span fires early, at the end of the span, for the owner to reschedule.
    @Test func farDeadlineParksAtSpan() {
        var wheel = TimerWheel<Int>(slotCount: 8)
        wheel.schedule(1, at: 1000)
        var due: [Int] = []
        wheel.advance(to: wheel.span - 1, into: &due)
        #expect(due.isEmpty)
        wheel.advance(to: wheel.span, into: &due)
        #expect(due == [1])
    }

    /// Lazy rescheduling (the gateway's pattern): an entry whose real deadline moved is put back until due.
    @Test func lazyReschedule() {
        var wheel = TimerWheel<Int>(slotCount: 16)
        var deadline: UInt64 = 5
        wheel.schedule(0, at: deadline)
        var fired: UInt64?
        var due: [Int] = []
        for now in UInt64(1)...40 {
            if now == 4 { deadline = 30 }  // activity pushed the deadline out
            due.removeAll()
            wheel.advance(to: now, into: &due)
            for entry in due {
                if deadline <= now { fired = now } else { wheel.schedule(entry, at: deadline) }
            }
        }
        #expect(fired == 30)
    }

    /// A jump longer than the wheel hands out every entry once.
    @Test func longJump() {
        var wheel = TimerWheel<Int>(slotCount: 8)
        for value in 1...5 { wheel.schedule(value, at: UInt64(value)) }
        var due: [Int] = []
        wheel.advance(to: 1000, into: &due)
        #expect(due.sorted() == [1, 2, 3, 4, 5])
        #expect(wheel.currentTick == 1000)
        #expect(wheel.count == 0)
    }
}
