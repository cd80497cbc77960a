/// fail2ban's idea for the gateway (SPEC §8): counts failed AUTHs and fatal protocol errors per address, and says
/// when an address has had more than `errors` of them within `window`, so that it be banned for `ttl`.
///
/// Windows are fixed: one opens at an address's first failure and lasts `window`; the next failure after it opens
/// a new one. That needs one count and one time per address rather than a time per failure, at the cost of
/// letting up to twice `errors` through across the boundary of two windows. Loopback is never counted (local
/// tools, health checks and tests must not lock themselves out). The table is bounded (`SweptTable`): two of the
/// oldest entries are checked on each failure and dropped once their window has passed, and at `capacity` the
/// oldest goes. Time is a monotonic clock in nanoseconds, as for the rate limits.
public struct AutoBan {
    /// Failures allowed within a window; one more is banned. 0 turns automatic bans off.
    public let errors: Int
    /// The window, in nanoseconds.
    public let window: UInt64
    /// Seconds an automatic ban lasts.
    public let ttl: Int

    /// Failures in the window that opened at `opened`.
    struct Count {
        var failures: Int
        var opened: UInt64
    }

    private var table: SweptTable<IPAddress, Count>

    /// Bans after more than `errors` failures (0: never) within `window` seconds, for `ttl` seconds.
    public init(errors: Int, window: Double, ttl: Int, capacity: Int = 65_536) {
        precondition(errors >= 0 && window > 0 && ttl > 0, "autoban settings are positive")
        self.errors = errors
        self.window = UInt64(min(window, 1e9) * 1e9)
        self.ttl = ttl
        self.table = SweptTable(capacity: capacity)
    }

    /// Addresses being counted.
    public var count: Int { table.count }

    /// The most addresses counted at once.
    public var capacity: Int { table.capacity }

    /// Counts a failure from `ip` at `now`: true when this one is over the limit and the address should be banned
    /// now. The count then starts again from zero, so a caller slow to apply the ban is told once per `errors`
    /// more failures, not on each.
    public mutating func recordFailure(_ ip: IPAddress, now: UInt64) -> Bool {
        guard errors > 0, !ip.isLoopback else { return false }
        let (errors, window) = (self.errors, self.window)
        table.sweep { Self.hasEnded($0, window: window, now: now) }
        let banned = table.update(ip) { count in
            if Self.hasEnded(count, window: window, now: now) { count = Count(failures: 0, opened: now) }
            count.failures += 1
            guard count.failures > errors else { return false }
            count = Count(failures: 0, opened: now)
            return true
        }
        if let banned { return banned }
        table.insert(ip, Count(failures: 1, opened: now))
        return false
    }

    /// The ban for `ip` once `recordFailure` said so, ending `ttl` seconds after `now` (Unix seconds).
    public func ban(_ ip: IPAddress, id: String, now: Int) -> Ban {
        request(ip).ban(id: id, now: now)
    }

    /// The ban to store for `ip` once `recordFailure` said so (`POST /v1/bans`'s request): the address alone, for
    /// `ttl` seconds, its reason saying it was automatic and why.
    public func request(_ ip: IPAddress) -> BanRequest {
        BanRequest(ip: CIDR(ip), ttl: ttl, reason: reason)
    }

    /// `automatic: more than 50 failed AUTHs or protocol errors within 60 s`.
    public var reason: String {
        let seconds = Double(window) / 1e9
        let span = seconds.rounded() == seconds ? "\(Int(seconds))" : "\(seconds)"
        return "automatic: more than \(errors) failed AUTHs or protocol errors within \(span) s"
    }

    /// Whether the window of `count` has passed at `now` (or the clock went back before it opened).
    private static func hasEnded(_ count: Count, window: UInt64, now: UInt64) -> Bool {
        now < count.opened || now - count.opened >= window
    }
}
