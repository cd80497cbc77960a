/// A token bucket: each take costs a token, tokens come back at the limit's rate up to its burst. Time is given
/// by the caller in nanoseconds of a monotonic clock (the loop's), so the bucket does no system call and tests
/// choose the time.
///
/// A bucket starts full. A clock that goes backwards adds nothing rather than trapping.
public struct TokenBucket: Sendable, Equatable {
    /// The policy.
    public let limit: RateLimit
    /// Tokens and when they were counted.
    var level: Level

    /// A full bucket for `limit` at `now`.
    public init(_ limit: RateLimit, now: UInt64) {
        self.limit = limit
        self.level = Level(full: limit, now: now)
    }

    /// Takes a token if there is one: true to go ahead, false when over the limit. Always true when unlimited.
    public mutating func take(now: UInt64) -> Bool { level.take(limit, now: now) }

    /// Whole seconds until a take would succeed, for a `Retry-After` header: 0 when one would now, else at
    /// least 1.
    public func retryAfter(now: UInt64) -> Int { level.retryAfter(limit, now: now) }

    /// Whether the bucket has refilled to its burst: forgetting it would change nothing.
    public func isFull(now: UInt64) -> Bool { level.isFull(limit, now: now) }

    /// The 16 bytes a bucket needs beside its policy; `KeyedLimiter` keeps one per key.
    struct Level: Sendable, Equatable {
        var tokens: Double
        var updated: UInt64

        init(full limit: RateLimit, now: UInt64) {
            tokens = limit.burst
            updated = now
        }

        /// Tokens at `now`, capped at the burst.
        func tokens(_ limit: RateLimit, at now: UInt64) -> Double {
            guard now > updated else { return tokens }
            return min(limit.burst, tokens + Double(now - updated) * limit.rate / 1e9)
        }

        mutating func take(_ limit: RateLimit, now: UInt64) -> Bool {
            if limit.isUnlimited { return true }
            tokens = tokens(limit, at: now)
            updated = max(updated, now)
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }

        func retryAfter(_ limit: RateLimit, now: UInt64) -> Int {
            if limit.isUnlimited { return 0 }
            let missing = 1 - tokens(limit, at: now)
            guard missing > 0 else { return 0 }
            // Capped so that a tiny rate cannot overflow the conversion: a day is as good as forever here.
            return Int(min(86_400, max(1, (missing / limit.rate).rounded(.up))))
        }

        func isFull(_ limit: RateLimit, now: UInt64) -> Bool { tokens(limit, at: now) >= limit.burst }
    }
}
