import PushCore
import PushPosix

/// Who may call the HTTP API, and how often (SPEC §8): `api.allow` (addresses and ranges; others get 403
/// `forbidden`, `/healthz` stays open for probes) and `limits.api_rate`/`api_burst` per API key (429
/// `rate_limited` with `Retry-After`).
///
/// The budget is the instance's, split evenly between its workers: each worker's bucket gets `api_rate / workers`
/// a second and `api_burst / workers` (rounded up, at least 1) saved up, so no shared state is needed between
/// processes. A backend that spreads its requests over a few keep-alive connections (the kernel hands connections
/// to workers at random) gets about the whole budget; one that sends everything down a single connection reaches
/// one worker and gets its share only.
struct APIGuard {
    /// Whom a bucket belongs to: the API key presented, or the caller's address when `api.keys` is empty (the API
    /// is open, so there are no keys to count by).
    enum Caller: Hashable {
        case key(String)
        case address(IPAddress)
    }

    private let allow: [CIDR]
    private let keyed: Bool
    private var limiter: KeyedLimiter<Caller>

    init(config: GatewayConfiguration) {
        allow = config.api.allow
        keyed = !config.api.keys.isEmpty
        let share = RateLimit.share(of: (config.limits.apiRate, config.limits.apiBurst), workers: config.server.workers)
        limiter = KeyedLimiter(share, capacity: 4096)
    }

    /// Refuses (403 `forbidden`) a caller whose address is not in `api.allow`, unless it asks for `/healthz`.
    /// Checked before routing, so an outsider learns nothing of the paths.
    func checkAddress(_ request: HTTPRequest, from peer: IPAddress?) throws(APIError) {
        guard !allow.isEmpty, request.path != "/healthz" else { return }
        guard let peer, allow.contains(where: { $0.contains(peer) }) else { throw .forbidden }
    }

    /// Takes a token from the caller's bucket, or refuses with 429 and the seconds until one comes back. Called
    /// after the key was checked, so a wrong key cannot spend a real one's budget.
    mutating func checkRate(_ request: HTTPRequest, from peer: IPAddress?) throws(APIError) {
        guard !limiter.limit.isUnlimited else { return }
        let caller: Caller
        if keyed, let header = request.header("authorization"), header.hasPrefix("Bearer ") {
            caller = .key(String(header.dropFirst(7).trimmingSpaces))
        } else {
            caller = .address(peer ?? IPAddress(high: 0, low: 0))
        }
        let now = Posix.monotonicNanos()
        guard limiter.take(caller, now: now) else {
            throw .rateLimited(retryAfter: limiter.retryAfter(caller, now: now))
        }
    }
}
