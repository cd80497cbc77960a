import Glibc
import Logging
import PushCore
import PushPosix

/// The backends' HTTP API server of one worker: accepts connections, checks API keys, routes requests to
/// the `PushAPI`.
///
/// A stopping worker (SIGTERM, or replaced by a reload) loses no request it has read: each connection's next
/// answer is its last (`Connection: close`), a connection is closed only at a request boundary, and the worker
/// exits once every connection is closed (at most `finishTicks` after its clients are drained).
final class HTTPServer {
    let loop: EventLoop
    let settings = HTTPParserSettings()
    let maxBody: Int
    let idleTicks: UInt32
    private let keys: Set<String>
    /// `api.allow` and `limits.api_rate` (SPEC §8).
    private var apiGuard: APIGuard
    private let api: PushAPI
    private let stats: WorkerStats
    private var open: [Int32: HTTPConnection] = [:]
    private var stopTimer: LoopTimer?
    /// While stopping: the tick by which every connection is closed, and what runs then.
    private var finishing: (deadline: UInt32, done: () -> Void)?

    /// A stopping worker closes a connection with nothing owed once it has been quiet this long: a backend that
    /// uses it sends its next request sooner, and gets it answered with `Connection: close`.
    static let quietTicks = EventLoop.ticks(1)
    /// The longest a stopping worker waits, after its clients are drained, for answers still owed.
    static let finishTicks = EventLoop.ticks(3)

    init(loop: EventLoop, config: GatewayConfiguration, api: PushAPI, stats: WorkerStats) {
        self.loop = loop
        maxBody = config.limits.maxBody
        idleTicks = EventLoop.ticks(config.limits.httpIdleTimeout)
        keys = Set(config.api.keys)
        apiGuard = APIGuard(config: config)
        self.api = api
        self.stats = stats
    }

    var connectionCount: Int { open.count }

    /// Takes a freshly accepted socket from the HTTP listener (`tls`: the HTTPS one).
    func accept(_ fd: Int32, tls: TLSContext? = nil) {
        let connection = HTTPConnection(fd: fd, server: self)
        guard loop.adopt(fd, connection, tls: tls) else { return }
        open[fd] = connection
        if stopTimer != nil { connection.endKeepAlive() }
    }

    func connectionClosed(_ connection: HTTPConnection, _ reason: CloseReason) {
        if open[connection.fd] === connection { open[connection.fd] = nil }
        if reason == .writeQueueFull { stats.httpClosedOverflow += 1 }
    }

    /// A connection stopped being read until its answers go out.
    func readsPaused() { stats.httpBackpressure += 1 }

    /// The worker is stopping (its listener is closed): every connection ends keep-alive, parked long-polls are
    /// answered now, and quiet connections are closed.
    func beginStop() {
        guard stopTimer == nil else { return }
        api.stop()
        for connection in open.values { connection.endKeepAlive() }
        let timer = LoopTimer(loop: loop) { [unowned self] in self.closeQuiet() }
        timer.start(after: 0.1, repeat: 0.1)
        stopTimer = timer
    }

    /// Runs `done` once every connection is closed, or `finishTicks` from now, closing what is left then.
    func finish(_ done: @escaping () -> Void) {
        beginStop()
        finishing = (loop.now &+ Self.finishTicks, done)
        closeQuiet()
    }

    private func closeQuiet() {
        let now = loop.now
        let late = finishing.map { $0.deadline <= now } ?? false
        for connection in Array(open.values) {
            if late {
                connection.close(.requestDone)
            } else if connection.isIdle, now &- connection.lastActive >= Self.quietTicks {
                connection.closeIdle()
            }
        }
        guard let finishing, open.isEmpty || late else { return }
        self.finishing = nil
        stopTimer?.stop()
        finishing.done()
    }

    /// Answers one request through `respond` (now, or later for work that waits on Redis): the caller's address
    /// is checked against `api.allow`, then the route, the key and the rate limit.
    func handle(_ request: HTTPRequest, from connection: HTTPConnection, respond: @escaping (HTTPResponse) -> Void) {
        stats.httpRequests += 1
        do {
            try admitAddress(request, connection)
            let route = try APIRoute.match(method: request.method, path: request.path)
            if route.needsKey {
                try authorize(request)
                try admitRate(request, connection)
            }
            api.handle(route, request, respond: respond)
        } catch {
            respond(Self.errorResponse(error, target: request.path))
        }
    }

    /// The answer to a refused request: goim's `{"code","message"}` under `/goim/`, else the /v1 error envelope.
    static func errorResponse(_ error: APIError, target: some StringProtocol) -> HTTPResponse {
        APIRoute.isGoim(target) ? PushAPI.goimError(error) : HTTPResponse(error)
    }

    private func admitAddress(_ request: HTTPRequest, _ connection: HTTPConnection) throws(APIError) {
        do {
            try apiGuard.checkAddress(request, from: connection.peerAddress)
        } catch {
            stats.apiForbidden += 1
            throw error
        }
    }

    private func admitRate(_ request: HTTPRequest, _ connection: HTTPConnection) throws(APIError) {
        do {
            try apiGuard.checkRate(request, from: connection.peerAddress)
        } catch {
            stats.apiRateLimited += 1
            throw error
        }
    }

    /// `Authorization: Bearer <key>` must name one of `api.keys` (when any are configured).
    private func authorize(_ request: HTTPRequest) throws(APIError) {
        guard !keys.isEmpty else { return }
        guard let header = request.header("authorization"), header.hasPrefix("Bearer "),
            keys.contains(String(header.dropFirst(7).trimmingSpaces))
        else { throw .unauthorized }
    }
}
