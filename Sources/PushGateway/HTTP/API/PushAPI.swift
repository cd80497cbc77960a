import Glibc
import PushCore
import PushPosix

/// The push, user and register servers' HTTP endpoints (SPEC §3), one file per group in this folder: each parses
/// its request, calls the push pipeline (or asks Redis or the node registry) and writes the answer. Nothing here
/// delivers or stores a push itself.
final class PushAPI {
    let pipeline: PushPipeline
    let connections: ConnectionServer
    let store: MessageStore
    let registry: NodeRegistry
    let stats: WorkerStats
    let config: GatewayConfiguration
    /// Signs tokens for `/v1/register`; nil when `auth.secret` is not set.
    let tokens: TokenSigner?
    /// Parked `GET /v1/users/{uid}/messages?wait=S` requests.
    let waiters: LongPolls
    /// Bans and route rules shared by every node (SPEC §8); set by the worker.
    var edge: EdgeState!

    init(
        pipeline: PushPipeline, connections: ConnectionServer, store: MessageStore, registry: NodeRegistry,
        stats: WorkerStats, config: GatewayConfiguration
    ) {
        self.pipeline = pipeline
        self.connections = connections
        self.store = store
        self.registry = registry
        self.stats = stats
        self.config = config
        tokens = config.auth.secret.map { TokenSigner(authenticator: OpenSSLHMAC(secret: $0)) }
        waiters = LongPolls(loop: connections.loop, store: store)
        waiters.retry = { [unowned self] in self.poll($0) }
    }

    /// The worker is stopping: long-polls are answered now rather than parked.
    func stop() { waiters.answerAll() }

    func handle(_ route: APIRoute, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
        do throws(APIError) {
            guard request.queryIsWellFormed else {
                throw .badRequest("the query has a malformed percent-escape (expected %XX with hex digits, UTF-8)")
            }
            switch route {
            case .healthz: respond(health())
            case .push: try push(request, respond: respond)
            case .pushBatch: try batch(request, respond: respond)
            case .register: try register(request, respond: respond)
            case .user(let user): userInfo(user, respond: respond)
            case .userRead(let user): try read(user, request, respond: respond)
            case .userMessages(let user): try messages(user, request, respond: respond)
            case .kick(let user, let key): kick(user, key: key, respond: respond)
            case .setPushToken(let user, let key): try setPushToken(user, key: key, request, respond: respond)
            case .removePushToken(let user, let key): removePushToken(user, key: key, respond: respond)
            case .presence: try presence(request, respond: respond)
            case .nodes: nodes(respond: respond)
            case .topic(let name): topicCount(name, respond: respond)
            case .goim(let route): goim(route, request, respond: respond)
            case .metrics: stats.serveMetrics { [unowned self] in self.withNotifyMetrics($0, respond) }
            case .listBans: try listBans(respond: respond)
            case .addBan: try addBan(request, respond: respond)
            case .removeBan(let id): try removeBan(id, respond: respond)
            case .routeRules: try routeRules(respond: respond)
            case .putRouteRules: try putRouteRules(request, respond: respond)
            }
        } catch {
            respond(HTTPResponse(error))
        }
    }

    /// `GET /healthz`.
    private func health() -> HTTPResponse {
        let redisUp = store.isAvailable
        return .json(status: redisUp ? 200 : 503) {
            $0.object {
                $0.field("status", redisUp ? "ok" : "degraded")
                $0.field("redis", redisUp ? "up" : "down")
                $0.field("connections", connections.connectionCount)
                $0.field("users", connections.users.userCount)
            }
        }
    }

    // MARK: - Helpers

    /// A body is read as JSON when its type says so, when no type is given, or when it is curl's default for
    /// `-d` (`application/x-www-form-urlencoded`) and the body starts like a JSON object or array: `curl -d '{…}'`
    /// works without `-H`. Any other type is 415.
    func requireJSON(_ request: HTTPRequest) throws(APIError) {
        guard let type = request.header("content-type"), type != "application/json" else { return }
        let base = (type.split(separator: ";").first.map { String($0).lowercased() } ?? "").trimmingSpaces
        if base == "application/json" { return }
        if base == "application/x-www-form-urlencoded",
            let first = request.body.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }),
            first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
        {
            return
        }
        throw .unsupportedMediaType(type)
    }

    static func storageError(_ failure: StoreFailure) -> APIError {
        switch failure {
        case .unavailable(let error): .unavailable("Redis is not available: \(error)")
        case .script(let error): APIError(status: 500, code: "storage_error", message: "\(error)")
        case .notReplicated: .unavailable("Redis did not replicate the push in time: \(failure)")
        }
    }
}
