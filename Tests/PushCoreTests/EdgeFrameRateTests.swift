import Testing

@testable import PushCore

private let second: UInt64 = 1_000_000_000
private let millisecond: UInt64 = 1_000_000

@Suite("Edge: frame rate and per-worker shares")
struct EdgeFrameRateTests {
    /// A burst passes at once; `burst` more are dropped; the one after them closes.
    @Test func burstThenDropsThenClose() {
        var limiter = FrameRateLimiter<UInt32>(RateLimit(rate: 50, burst: 200))
        for _ in 0..<200 { #expect(limiter.spend(1, now: 0) == .pass) }
        for _ in 0..<200 { #expect(limiter.spend(1, now: 0) == .drop) }
        #expect(limiter.spend(1, now: 0) == .close)
        #expect(limiter.count == 0, "a closed connection's bucket goes at once")
    }

    /// Dropped frames are a debt repaid at the rate: a client that slows down is served again once it is repaid.
    @Test func debtIsRepaid() {
        var limiter = FrameRateLimiter<UInt32>(RateLimit(rate: 10, burst: 5))
        for _ in 0..<5 { #expect(limiter.spend(7, now: 0) == .pass) }
        for _ in 0..<3 { #expect(limiter.spend(7, now: 0) == .drop) }
        // 3 tokens owed, repaid at 10 a second: at 350 ms half a token is there, so the frame is dropped (and owed
        // too); at 500 ms a whole one is.
        #expect(limiter.spend(7, now: 350 * millisecond) == .drop)
        #expect(limiter.spend(7, now: 500 * millisecond) == .pass)
        #expect(limiter.spend(7, now: 500 * millisecond) == .drop)
        #expect(limiter.spend(7, now: 2 * second) == .pass)
    }

    /// A client at twice the rate sinks: its drops pile up and it is closed after a burst of them.
    @Test func steadyOverRateCloses() {
        var limiter = FrameRateLimiter<UInt32>(RateLimit(rate: 10, burst: 10))
        var verdicts: [FrameRateVerdict] = []
        for step in 0..<200 {
            let verdict = limiter.spend(3, now: UInt64(step) * 50 * millisecond)
            verdicts.append(verdict)
            if verdict == .close { break }
        }
        // 20 frames a second against 10: the bucket loses half a token per frame, from 10 down to -10.
        #expect(verdicts == Array(repeating: .pass, count: 19) + Array(repeating: .drop, count: 20) + [.close])
    }

    /// Connections have their own buckets; refilled ones are swept, so only recent senders keep one.
    @Test func perConnectionAndSwept() {
        var limiter = FrameRateLimiter<UInt32>(RateLimit(rate: 50, burst: 2))
        #expect(limiter.spend(1, now: 0) == .pass)
        #expect(limiter.spend(1, now: 0) == .pass)
        #expect(limiter.spend(1, now: 0) == .drop)
        #expect(limiter.spend(2, now: 0) == .pass, "another connection is not held back")
        #expect(limiter.count == 2)
        limiter.sweep(now: 10 * millisecond)
        #expect(limiter.count == 2, "not refilled yet")
        limiter.sweep(now: second)
        #expect(limiter.count == 0)
        limiter.forget(5)
        #expect(limiter.spend(2, now: second) == .pass)
        limiter.forget(2)
        #expect(limiter.count == 0)
    }

    /// Unlimited: every frame passes and nothing is kept.
    @Test func unlimited() {
        var limiter = FrameRateLimiter<UInt32>(.unlimited)
        for index in 0..<1000 { #expect(limiter.spend(UInt32(index % 3), now: 0) == .pass) }
        #expect(limiter.count == 0)
    }

    /// `max_conns_per_ip` per worker: the instance's maximum divided rounded up, at least 1; 0 stays off.
    @Test(arguments: [(0, 4, 0), (10, 1, 10), (10, 3, 4), (1, 8, 1), (7, 2, 4), (5, 0, 5)])
    func connectionShare(maximum: Int, workers: Int, expected: Int) {
        #expect(KeyedCounter<IPAddress>.share(of: maximum, workers: workers) == expected)
    }

    /// `connect_rate` per worker, as `api_rate`: the rate divided, the burst divided rounded up.
    @Test func connectShare() {
        let share = RateLimit.share(of: (10, 5), workers: 2)
        #expect(share.rate == 5 && share.burst == 3)
    }
}
