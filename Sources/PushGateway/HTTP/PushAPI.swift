import Glibc
import PushCore

/// The push and user servers' HTTP endpoints (SPEC §3) over the worker's local state. Storage-backed
/// endpoints answer 503 or 501 until the message server is connected.
final class PushAPI {
    private let connections: ConnectionServer
    private let stats: WorkerStats
    private let config: GatewayConfiguration
    /// Signs tokens for `/v1/register`; nil when `auth.secret` is not set.
    private let tokens: TokenSigner?

    init(connections: ConnectionServer, stats: WorkerStats, config: GatewayConfiguration) {
        self.connections = connections
        self.stats = stats
        self.config = config
        tokens = config.auth.secret.map { TokenSigner(authenticator: OpenSSLHMAC(secret: $0)) }
    }

    func handle(_ route: APIRoute, _ request: HTTPRequest, respond: (HTTPResponse) -> Void) {
        do {
            switch route {
            case .healthz: respond(health())
            case .push: respond(try push(request))
            case .register: respond(try register(request))
            case .pushBatch, .user, .userMessages, .userRead, .kick, .topic, .nodes, .metrics:
                throw APIError.notImplemented("\(request.method) \(request.path) is not served by this build yet")
            }
        } catch let error as APIError {
            respond(HTTPResponse(error))
        } catch {
            respond(HTTPResponse(APIError(status: 500, code: "internal", message: "\(error)")))
        }
    }

    private func health() -> HTTPResponse {
        .json {
            $0.object {
                $0.field("status", "ok")
                $0.field("connections", connections.connectionCount)
                $0.field("users", connections.users.userCount)
            }
        }
    }

    /// `POST /v1/push`. Transient pushes (`"store": false`) go to the local connections now; stored ones
    /// need the message server, and a push that could not be stored is never answered 200.
    private func push(_ request: HTTPRequest) throws -> HTTPResponse {
        try requireJSON(request)
        let push = try PushRequest(body: request.body)
        if push.store {
            throw APIError.unavailable("message storage is not available: send \"store\": false for a transient push")
        }
        stats.pushes += 1
        var encoded: [UInt8] = []
        encoded.reserveCapacity(FrameLayout.headerLength + push.payload.count)
        Frame.encode(operation: push.operation, sequence: 0, body: push.payload, into: &encoded)
        let id = push.id ?? PushAPI.makeID()

        switch push.target {
        case .users(let users):
            var online: [(String, Int)] = []
            for user in users {
                online.append((user, connections.deliver(encoded, operation: push.operation, toUser: user).online))
            }
            return pushReply(id: id, online: online)
        case .devices(let devices):
            var online: [String: Int] = [:]
            var order: [String] = []
            for device in devices {
                let count = connections.deliver(encoded, operation: push.operation, toUser: device.user, device: device.key).online
                if online[device.user] == nil { order.append(device.user) }
                online[device.user, default: 0] += count
            }
            return pushReply(id: id, online: order.map { ($0, online[$0]!) })
        case .all:
            let delivered = connections.deliverToAll(encoded, operation: push.operation)
            return .json {
                $0.object {
                    $0.field("id", id)
                    $0.field("delivered", delivered)
                }
            }
        case .topic:
            throw APIError.notImplemented("topics are not served by this build yet")
        }
    }

    private func pushReply(id: String, online: [(String, Int)]) -> HTTPResponse {
        .json {
            $0.object {
                $0.field("id", id)
                $0.key("seqs")
                $0.object { _ in }
                $0.key("online")
                $0.object { writer in
                    for (user, count) in online { writer.field(user, count) }
                }
            }
        }
    }

    /// `POST /v1/register`: a signed token for a user's device and the gateway addresses to connect to.
    private func register(_ request: HTTPRequest) throws -> HTTPResponse {
        try requireJSON(request)
        guard let tokens else {
            throw APIError.notImplemented("token signing is not configured: set auth.secret")
        }
        let body: JSONValue
        do {
            body = try JSONParser.parse(request.body)
        } catch {
            throw APIError.badRequest("body is not JSON: \(error)")
        }
        guard let user = body["user"]?.identifier, !user.isEmpty, user.utf8.count <= AuthRequest.maxFieldLength,
            let device = body["device"]?.identifier, !device.isEmpty, device.utf8.count <= AuthRequest.maxFieldLength
        else {
            throw APIError.badRequest("user and device are required (non-empty strings of at most 256 bytes)")
        }
        let expiresAt = UInt64(time(nil)) + UInt64(config.auth.tokenTTL)
        let token = tokens.issue(user: user, device: device, expiresAt: expiresAt)
        let gateways = gatewayAddresses(host: request.header("host"))
        return .json {
            $0.object {
                $0.field("token", token)
                $0.field("expires_at", expiresAt)
                $0.key("gateways")
                $0.array { writer in gateways.forEach { writer.value($0) } }
            }
        }
    }

    /// The client TCP address as a device should dial it: a wildcard listen address becomes the host name the
    /// backend used to reach this API.
    private func gatewayAddresses(host: String?) -> [String] {
        guard let tcp = config.server.tcp else { return [] }
        guard tcp.host == "0.0.0.0" || tcp.host == "::" else { return [tcp.description] }
        var name = host ?? "127.0.0.1"
        if name.hasPrefix("[") {
            name = String(name.prefix(through: name.firstIndex(of: "]") ?? name.endIndex))
        } else if let colon = name.lastIndex(of: ":") {
            name = String(name[..<colon])
        }
        return ["\(name):\(tcp.port)"]
    }

    /// A body must be JSON when its type is given at all.
    private func requireJSON(_ request: HTTPRequest) throws(APIError) {
        guard let type = request.header("content-type") else { return }
        let base = type.split(separator: ";").first.map { String($0).lowercased() } ?? ""
        guard base.trimmingSpaces == "application/json" else { throw .unsupportedMediaType(type) }
    }

    /// A push id when the backend gave none: 16 random hex digits.
    static func makeID() -> String {
        var random = SystemRandomNumberGenerator()
        let value: UInt64 = random.next()
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
