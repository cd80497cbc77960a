/// When to try a notification again after a failed attempt, and when to give up: exponential backoff with full
/// jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): the n-th retry waits a uniformly random time
/// between 0 and `min(cap, base · 2^(n-1))`, so notifiers that failed together do not retry together.
public struct RetryPolicy: Sendable, Equatable {
    /// Seconds, > 0: the ceiling of the first retry's delay.
    public var base: Double
    /// Seconds, ≥ base: no delay's ceiling is higher.
    public var cap: Double
    /// `notify.max_attempts`, ≥ 1: attempts in all, the first included; after the last, the entry goes to the
    /// dead-letter stream.
    public var maxAttempts: Int

    /// A policy. The defaults, 1 s, 5 min and 8 attempts, give 7 retries under ceilings of 1, 2, 4 … 64 s: at most
    /// 127 s of waiting in all.
    public init(base: Double = 1, cap: Double = 300, maxAttempts: Int = 8) {
        precondition(base > 0 && cap >= base && maxAttempts >= 1, "RetryPolicy: bad parameters")
        self.base = base
        self.cap = cap
        self.maxAttempts = maxAttempts
    }

    /// The ceiling of the delay after the `attempts`-th failed attempt (1 for the first): `min(cap, base ·
    /// 2^(attempts-1))`.
    public func ceiling(afterAttempt attempts: Int) -> Double {
        let exponent = min(max(attempts - 1, 0), 62)
        return min(cap, base * Double(UInt64(1) << UInt64(exponent)))
    }

    /// Seconds to wait after the `attempts`-th failed attempt (1 for the first) before the next, or nil when
    /// `attempts` reached ``maxAttempts``: give up. A provider's `Retry-After` is honoured as given, neither
    /// shortened by jitter nor capped (the provider asked for it); otherwise full jitter.
    public func delay(
        afterAttempt attempts: Int, retryAfter: Double? = nil, using generator: inout some RandomNumberGenerator
    ) -> Double? {
        guard attempts < maxAttempts else { return nil }
        if let retryAfter, retryAfter.isFinite, retryAfter >= 0 { return retryAfter }
        return Double.random(in: 0...ceiling(afterAttempt: attempts), using: &generator)
    }
}
