/// A token-bucket policy: `rate` tokens a second, at most `burst` saved up. A rate of 0 is no limit.
///
/// The policy is kept apart from the buckets' levels so that a limiter with many keys stores it once.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// Tokens added per second; 0 means unlimited.
    public let rate: Double
    /// The bucket's size: how many takes in a row a full bucket allows. At least 1 when limited.
    public let burst: Double

    /// No limit.
    public static let unlimited = RateLimit(rate: 0, burst: 0)

    /// `rate` per second (0: unlimited), `burst` saved up. A burst of 0 with a rate means one second's worth: the
    /// rate rounded up, at least 1 (`limits.api_rate = 100` alone allows 100 at once, then 100 a second).
    public init(rate: Double, burst: Int) {
        precondition(rate.isFinite && rate >= 0 && burst >= 0, "a rate limit is finite and not negative")
        self.rate = rate
        if rate == 0 {
            self.burst = 0
        } else {
            self.burst = burst > 0 ? Double(burst) : max(1, rate.rounded(.up))
        }
    }

    /// One worker's share of an instance's `limit` split between `workers` processes that keep no shared state:
    /// the rate divided, and a given burst divided rounded up (at least 1); a burst of 0 stays one second's worth
    /// of the divided rate. Unlimited stays unlimited.
    public static func share(of limit: (rate: Double, burst: Int), workers: Int) -> RateLimit {
        guard limit.rate > 0 else { return .unlimited }
        let workers = max(1, workers)
        let burst = limit.burst > 0 ? (limit.burst + workers - 1) / workers : 0
        return RateLimit(rate: limit.rate / Double(workers), burst: burst)
    }

    /// Whether every take succeeds.
    public var isUnlimited: Bool { rate == 0 }

    /// `50/s, burst 200`, or `unlimited`.
    public var description: String { isUnlimited ? "unlimited" : "\(rate)/s, burst \(Int(burst))" }
}
