import PushCore
import PushPosix

/// Limits on what an accepted client does (SPEC §8): frames per connection (`limits.client_rate`/`client_burst`)
/// and automatic bans of addresses that keep failing (`limits.autoban_*`). The limits at accept are in
/// `ConnectionServer+Accept.swift`.
extension ConnectionServer {
    /// A frame as it arrives from a client: counted, held to the frame rate, then handled. Over the rate the frame is
    /// dropped and answered with ERROR `rate_limited` (its op and seq); after a burst of drops the next one closes the
    /// connection with a fatal ERROR `rate_limited` (`FrameRateLimiter`).
    ///
    /// HEARTBEAT and ACK are not counted (SPEC §8), nor AUTH: a connection sends it once (a second is fatal anyway),
    /// and counting it would give every connection of a reconnect storm a bucket for nothing.
    func receive(_ frame: Frame, from connection: ClientConnection) {
        stats.framesIn += 1
        if !frameLimiter.limit.isUnlimited, Self.countsTowardsRate(frame.operation) {
            switch frameLimiter.spend(connection.generation, now: Posix.monotonicNanos()) {
            case .pass:
                break
            case .drop:
                stats.rateLimitedFrames += 1
                logger.debug(
                    "frame dropped: over the frame rate",
                    metadata: ["fd": "\(connection.fd)", "addr": "\(connection.address)", "op": "\(frame.operation)"])
                let error = ProtocolError.rateLimited(frame.operation)
                connection.send(error.frame(op: frame.operation, sequence: frame.sequence))
                return
            case .close:
                stats.rateLimitedFrames += 1
                stats.rateLimitedCloses += 1
                connection.close(.rateLimited(operation: frame.operation, sequence: frame.sequence))
                return
            }
        }
        handle(frame, from: connection)
    }

    /// Whether frames of `operation` spend the frame rate: all but HEARTBEAT, ACK and AUTH.
    static func countsTowardsRate(_ operation: Operation) -> Bool {
        operation != .heartbeat && operation != .ack && operation != .auth
    }

    /// Drops the frame buckets that have refilled, once a second: an idle connection keeps none.
    func startSweepingFrameBudgets() {
        guard !frameLimiter.limit.isUnlimited else { return }
        let period = EventLoop.ticks(1)
        var next = loop.now &+ period
        loop.addTick { [unowned self] in
            guard loop.now >= next else { return }
            next = loop.now &+ period
            frameLimiter.sweep(now: Posix.monotonicNanos())
        }
    }

    /// A close the client at `address` is to blame for (a failed AUTH, a fatal protocol error): over
    /// `limits.autoban_errors` within `limits.autoban_window`, the address is banned for `limits.autoban_ttl` through
    /// the shared ban list, so every node closes it at accept. Loopback is never banned (`AutoBan`); an address
    /// already banned is not banned again (another worker's failures may have done it).
    ///
    /// Each worker counts the failures it sees: an address whose connections spread over N workers is banned after
    /// at most N × `autoban_errors` failures, and never before `autoban_errors`.
    func countFailure(from address: IPAddress) {
        guard autoBan.recordFailure(address, now: Posix.monotonicNanos()) else { return }
        if bans.hasAddressBans, bans.bansAddress(address, now: EdgeState.now()) != nil { return }
        let request = autoBan.request(address)
        stats.autobans += 1
        logger.notice(
            "automatic ban", metadata: ["addr": "\(address)", "ttl": "\(autoBan.ttl)", "reason": "\(request.reason)"])
        onAutoBan?(request)
    }
}
