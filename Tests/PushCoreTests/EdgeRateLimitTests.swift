import Testing

@testable import PushCore

private let second: UInt64 = 1_000_000_000
private let millisecond: UInt64 = 1_000_000

@Suite("Edge: rate limits")
struct EdgeRateLimitTests {
    /// A full bucket allows its burst at once, then one take per 1/rate seconds.
    @Test func burstThenRate() {
        var bucket = TokenBucket(RateLimit(rate: 2, burst: 3), now: 10 * second)
        let start = 10 * second
        for _ in 0..<3 { #expect(bucket.take(now: start) == true) }
        #expect(bucket.take(now: start) == false)
        #expect(bucket.take(now: start + 499 * millisecond) == false)
        #expect(bucket.take(now: start + 500 * millisecond) == true)
        #expect(bucket.take(now: start + 500 * millisecond) == false)
        #expect(bucket.take(now: start + 1000 * millisecond) == true)
    }

    /// Idle time refills up to the burst, never beyond.
    @Test func refillCapsAtBurst() {
        var bucket = TokenBucket(RateLimit(rate: 10, burst: 5), now: 0)
        for _ in 0..<5 { _ = bucket.take(now: 0) }
        #expect(!bucket.isFull(now: 0))
        #expect(bucket.isFull(now: 500 * millisecond))
        let later = 3600 * second
        for _ in 0..<5 { #expect(bucket.take(now: later) == true) }
        #expect(bucket.take(now: later) == false)
    }

    /// Retry-After: 0 while a take would succeed, else whole seconds rounded up, at least 1.
    @Test func retryAfter() {
        var fast = TokenBucket(RateLimit(rate: 4, burst: 1), now: 0)
        #expect(fast.retryAfter(now: 0) == 0)
        #expect(fast.take(now: 0) == true)
        #expect(fast.retryAfter(now: 0) == 1)  // 0.25 s, rounded up
        var slow = TokenBucket(RateLimit(rate: 0.2, burst: 1), now: 0)
        #expect(slow.take(now: 0) == true)
        #expect(slow.retryAfter(now: 0) == 5)
        #expect(slow.retryAfter(now: 2 * second) == 3)
        #expect(slow.retryAfter(now: 4_500 * millisecond) == 1)
        #expect(slow.retryAfter(now: 5 * second) == 0)
        var glacial = TokenBucket(RateLimit(rate: 1e-12, burst: 1), now: 0)
        #expect(glacial.take(now: 0) == true)
        #expect(glacial.retryAfter(now: 0) == 86_400)
    }

    /// Rate 0 is unlimited: every take succeeds, nothing to wait for.
    @Test func zeroRateIsUnlimited() {
        var bucket = TokenBucket(.unlimited, now: 0)
        for _ in 0..<10_000 { #expect(bucket.take(now: 0) == true) }
        #expect(bucket.retryAfter(now: 0) == 0)
        #expect(RateLimit(rate: 0, burst: 50).isUnlimited)
        #expect(RateLimit(rate: 0, burst: 50) == .unlimited)
    }

    /// A burst of 0 with a rate is one second's worth, at least 1.
    @Test(arguments: [(100.0, 0, 100.0), (0.5, 0, 1.0), (2.5, 0, 3.0), (100, 7, 7)])
    func defaultBurst(_ rate: Double, _ burst: Int, _ expected: Double) {
        #expect(RateLimit(rate: rate, burst: burst).burst == expected)
    }

    /// A clock read out of order adds nothing and takes nothing away.
    @Test func clockBackwards() {
        var bucket = TokenBucket(RateLimit(rate: 1, burst: 1), now: 100 * second)
        #expect(bucket.take(now: 100 * second) == true)
        #expect(bucket.take(now: 50 * second) == false)
        #expect(bucket.take(now: 101 * second) == true)
    }

    /// Keys have their own buckets: one client over its limit does not hold back another.
    @Test func keysAreIndependent() throws {
        var limiter = KeyedLimiter<IPAddress>(RateLimit(rate: 1, burst: 2))
        let a = try #require(IPAddress("203.0.113.1"))
        let b = try #require(IPAddress("2001:db8::1"))
        #expect(limiter.take(a, now: 0) == true)
        #expect(limiter.take(a, now: 0) == true)
        #expect(limiter.take(a, now: 0) == false)
        #expect(limiter.retryAfter(a, now: 0) == 1)
        #expect(limiter.take(b, now: 0) == true)
        #expect(limiter.take(b, now: 0) == true)
        #expect(limiter.retryAfter(b, now: 0) == 1)
        #expect(limiter.retryAfter(try #require(IPAddress("10.0.0.1")), now: 0) == 0)
        #expect(limiter.take(a, now: second) == true)
        #expect(limiter.count == 2)
    }

    /// Unlimited keeps no buckets at all.
    @Test func unlimitedStoresNothing() {
        var limiter = KeyedLimiter<String>(.unlimited)
        for index in 0..<1000 { #expect(limiter.take("key\(index)", now: 0) == true) }
        #expect(limiter.count == 0)
    }

    /// Buckets that refilled are swept as later takes go by, so one-off clients do not pile up.
    @Test func idleFullBucketsAreSwept() {
        var limiter = KeyedLimiter<Int>(RateLimit(rate: 10, burst: 10))
        for key in 0..<1000 { _ = limiter.take(key, now: 0) }
        #expect(limiter.count == 1000)
        // A second later every bucket is full again; a steady client's takes sweep the others out.
        for step in 0..<600 { _ = limiter.take(-1, now: second + UInt64(step) * 50 * millisecond) }
        #expect(limiter.count == 1)
    }

    /// Keys still being limited are kept by the sweep.
    @Test func limitedBucketsAreKept() {
        var limiter = KeyedLimiter<Int>(RateLimit(rate: 1, burst: 1))
        for key in 0..<100 { #expect(limiter.take(key, now: 0) == true) }
        for _ in 0..<1000 { _ = limiter.take(0, now: 0) }
        #expect(limiter.count == 100)
        for key in 1..<100 { #expect(limiter.take(key, now: 0) == false) }
    }

    /// The table never holds more than its capacity; past it the oldest key is forgotten (and starts full again).
    @Test func boundedByCapacity() {
        var limiter = KeyedLimiter<Int>(RateLimit(rate: 1, burst: 1), capacity: 64)
        for key in 0..<10_000 {
            #expect(limiter.take(key, now: 0) == true)
            #expect(limiter.count <= 64)
        }
        #expect(limiter.take(9_999, now: 0) == false)
        #expect(limiter.take(0, now: 0) == true)
    }

    /// Connections per address: accepted up to the maximum, refused beyond, room again after a close.
    @Test func connectionsPerAddress() throws {
        var counter = KeyedCounter<IPAddress>(maximum: 2)
        let a = try #require(IPAddress("198.51.100.7"))
        let b = try #require(IPAddress("::ffff:198.51.100.8"))
        #expect(counter.increment(a) == true)
        #expect(counter.increment(a) == true)
        #expect(counter.increment(a) == false)
        #expect(counter.count(a) == 2)
        #expect(counter.increment(b) == true)
        counter.decrement(a)
        #expect(counter.increment(a) == true)
        counter.decrement(a)
        counter.decrement(a)
        counter.decrement(b)
        #expect(counter.count(a) == 0 && counter.count == 0)
        counter.decrement(a)  // a stray close is harmless
        #expect(counter.count(a) == 0)
    }

    /// A maximum of 0 is no maximum, and counts nothing.
    @Test func zeroMaximumIsUnlimited() {
        var counter = KeyedCounter<String>(maximum: 0)
        for _ in 0..<1000 { #expect(counter.increment("a") == true) }
        #expect(counter.count == 0)
    }
}
