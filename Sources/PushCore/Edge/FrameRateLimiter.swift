/// `limits.client_rate`/`limits.client_burst` (SPEC §8): frames per connection, one token bucket per connection
/// that may go a burst into debt. A full bucket lets `burst` frames through at once, then `rate` a second; a frame
/// over that is dropped (ERROR `rate_limited`, not fatal) and still costs its token, so a client that keeps sending
/// sinks deeper; once it has had `burst` frames dropped and sends one more, it is closed. A client that slows down
/// pays the debt back at `rate` and is served again when it is repaid.
///
/// Only connections that sent a counted frame lately have a bucket: a missing bucket is a full one, and `sweep`
/// (once a second) drops the buckets that have refilled, so an idle connection costs nothing here. Keys are the
/// connections' loop generations (never reused while a connection lives), so a bucket left behind by a closed
/// connection can never apply to another and simply refills and goes.
public struct FrameRateLimiter<Key: Hashable> {
    public typealias Verdict = FrameRateVerdict

    /// The policy of every connection.
    public let limit: RateLimit
    private var levels: [Key: TokenBucket.Level] = [:]

    public init(_ limit: RateLimit) {
        self.limit = limit
    }

    /// Connections with a bucket now (not full at their last frame).
    public var count: Int { levels.count }

    /// Spends a token of `key`'s bucket for one frame at `now` (nanoseconds of a monotonic clock).
    public mutating func spend(_ key: Key, now: UInt64) -> Verdict {
        if limit.isUnlimited { return .pass }
        let limit = self.limit
        guard let index = levels.index(forKey: key) else {
            var level = TokenBucket.Level(full: limit, now: now)
            let verdict = level.spendInDebt(limit, now: now)
            levels[key] = level
            return verdict
        }
        let verdict = levels.values[index].spendInDebt(limit, now: now)
        if verdict == .close { levels.remove(at: index) }
        return verdict
    }

    /// Drops the buckets that have refilled by `now`: they say nothing a missing one would not.
    public mutating func sweep(now: UInt64) {
        guard !levels.isEmpty else { return }
        let limit = self.limit
        levels = levels.filter { !$0.value.isFull(limit, now: now) }
    }

    /// Forgets `key`'s bucket (its connection closed).
    public mutating func forget(_ key: Key) {
        levels[key] = nil
    }
}

/// What to do with a client's frame (`FrameRateLimiter`).
public enum FrameRateVerdict: Equatable, Sendable {
    /// Within the limit: handle it.
    case pass
    /// Over the limit: drop it and answer ERROR `rate_limited`.
    case drop
    /// Over the limit after `burst` drops: ERROR `rate_limited` and close.
    case close
}

extension TokenBucket.Level {
    /// Takes a token even when there is none, down to `-burst`: `.pass` while one was there, `.drop` while the debt
    /// is at most a burst, `.close` past it.
    mutating func spendInDebt(_ limit: RateLimit, now: UInt64) -> FrameRateVerdict {
        tokens = tokens(limit, at: now) - 1
        updated = max(updated, now)
        if tokens >= 0 { return .pass }
        return tokens >= -limit.burst ? .drop : .close
    }
}
