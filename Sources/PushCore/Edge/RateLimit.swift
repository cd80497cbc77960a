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

    /// Whether every take succeeds.
    public var isUnlimited: Bool { rate == 0 }

    /// `50/s, burst 200`, or `unlimited`.
    public var description: String { isUnlimited ? "unlimited" : "\(rate)/s, burst \(Int(burst))" }
}
