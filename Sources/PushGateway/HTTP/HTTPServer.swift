import CLibev
import Glibc
import Logging
import PushCore

/// The backends' HTTP API server of one worker: accepts connections, checks API keys, routes requests to
/// the `PushAPI`.
final class HTTPServer {
    let loop: EventLoop
    let settings = HTTPParserSettings()
    let maxBody: Int
    let idleTicks: UInt32
    private let keys: Set<String>
    private let api: PushAPI
    private let stats: WorkerStats
    private(set) var connectionCount = 0

    init(loop: EventLoop, config: GatewayConfiguration, api: PushAPI, stats: WorkerStats) {
        self.loop = loop
        maxBody = config.limits.maxBody
        idleTicks = EventLoop.ticks(config.limits.httpIdleTimeout)
        keys = Set(config.api.keys)
        self.api = api
        self.stats = stats
    }

    func accept(_ fd: Int32) {
        if loop.adopt(fd, HTTPConnection(fd: fd, server: self)) { connectionCount += 1 }
    }

    func connectionClosed(_ connection: HTTPConnection) {
        connectionCount -= 1
    }

    /// Answers one request through `respond` (now, or later for work that waits on Redis).
    func handle(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
        stats.httpRequests += 1
        do {
            let route = try APIRoute.match(method: request.method, path: request.path)
            if route.needsKey { try authorize(request) }
            api.handle(route, request, respond: respond)
        } catch {
            respond(Self.errorResponse(error, target: request.path))
        }
    }

    /// The answer to a refused request: goim's `{"code","message"}` under `/goim/`, else the /v1 error envelope.
    static func errorResponse(_ error: APIError, target: some StringProtocol) -> HTTPResponse {
        APIRoute.isGoim(target) ? PushAPI.goimError(error) : HTTPResponse(error)
    }

    /// `Authorization: Bearer <key>` must name one of `api.keys` (when any are configured).
    private func authorize(_ request: HTTPRequest) throws(APIError) {
        guard !keys.isEmpty else { return }
        guard let header = request.header("authorization"), header.hasPrefix("Bearer "),
            keys.contains(String(header.dropFirst(7).trimmingSpaces))
        else { throw .unauthorized }
    }
}
