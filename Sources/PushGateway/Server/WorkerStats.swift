import PushCore
import PushPosix

/// Counters of one worker, plain integers bumped on the loop thread. `/healthz` and the logs read them; once a
/// second the worker's control channel sends them to the master, which adds up every worker's for the admin
/// socket and `/metrics`.
final class WorkerStats {
    var accepted = 0
    var authenticated = 0
    var framesIn = 0
    /// Frames queued to clients: replies and control frames as well as messages.
    var framesOut = 0
    var delivered = 0
    var pushes = 0
    var gapFills = 0
    var catchUps = 0
    var stored = 0
    var httpRequests = 0
    var httpBackpressure = 0
    var httpClosedOverflow = 0
    /// Refused by the edge (SPEC §8): API calls from addresses outside `api.allow` (403), over `limits.api_rate`
    /// (429); client connections closed at accept for a banned address, AUTHs refused for a ban, open connections
    /// sent away by a new ban; registers refused for a ban.
    var apiForbidden = 0
    var apiRateLimited = 0
    var bannedAtAccept = 0
    var bannedAtAuth = 0
    var bannedDisconnects = 0
    var bannedRegisters = 0
    /// Limits on clients (SPEC §8): connections closed at accept over `limits.connect_rate` or
    /// `limits.max_conns_per_ip` for their address; frames dropped over `limits.client_rate`, and connections closed
    /// still over it; addresses banned automatically.
    var refusedConnectRate = 0
    var refusedMaxConnsPerIP = 0
    var rateLimitedFrames = 0
    var rateLimitedCloses = 0
    var autobans = 0
    private(set) var closes: [CloseReason.Kind: Int] = [:]
    /// Push → delivery seconds of stored messages delivered live.
    private(set) var pushDelivery = Histogram()
    /// Serves `GET /metrics`; set by the worker's control channel.
    var metricsSource: ((@escaping (HTTPResponse) -> Void) -> Void)?

    /// A stored message older than this when it reaches a connection is a replay to a device that was offline
    /// (AUTH with `last_seq`, a gap filled late), not a live delivery: it is counted but not timed.
    static let liveDeliveryLimit: UInt64 = 60_000

    func closed(_ reason: CloseReason.Kind) {
        closes[reason, default: 0] += 1
    }

    /// A stored message pushed at `pushedAtMillis` (Unix milliseconds, the message's timestamp) was queued to a
    /// connection: counts the delivery and the frame, and times it when it is live.
    func deliveredStored(pushedAtMillis: UInt64) {
        delivered += 1
        framesOut += 1
        let nowMillis = Posix.wallMillis()
        guard nowMillis >= pushedAtMillis, nowMillis - pushedAtMillis <= Self.liveDeliveryLimit else { return }
        pushDelivery.observe(Double(nowMillis - pushedAtMillis) / 1000)
    }

    /// Answers `GET /metrics` (Prometheus text for the whole gateway).
    func serveMetrics(_ respond: @escaping (HTTPResponse) -> Void) {
        guard let metricsSource else {
            return respond(HTTPResponse(.unavailable("metrics are not available yet")))
        }
        metricsSource(respond)
    }
}
