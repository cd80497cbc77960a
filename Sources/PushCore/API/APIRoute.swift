/// The HTTP API's routes (SPEC §3), matched from a method and a path. A path that exists with another
/// method is a 405 listing the allowed ones; an unknown path is a 404.
public enum APIRoute: Equatable, Sendable {
    case push
    case pushBatch
    case register
    case user(String)
    case userMessages(String)
    case userRead(String)
    case kick(user: String, key: String)
    /// `PUT /v1/users/{uid}/devices/{key}/push` (SPEC §10).
    case setPushToken(user: String, key: String)
    /// `DELETE /v1/users/{uid}/devices/{key}/push`.
    case removePushToken(user: String, key: String)
    /// `GET /v1/presence?users=…` (SPEC §10).
    case presence
    case topic(String)
    case nodes
    case healthz
    case metrics
    /// `GET /v1/bans`.
    case listBans
    /// `POST /v1/bans`.
    case addBan
    /// `DELETE /v1/bans/{id}`.
    case removeBan(String)
    /// `GET /v1/route/rules`.
    case routeRules
    /// `PUT /v1/route/rules`.
    case putRouteRules
    /// goim's logic HTTP API (SPEC §3), so goim's tools run unchanged.
    case goim(GoimRoute)

    public enum GoimRoute: String, Sendable {
        case pushKeys = "push/keys"
        case pushMids = "push/mids"
        case pushRoom = "push/room"
        case pushAll = "push/all"
        case onlineTotal = "online/total"
        case onlineRoom = "online/room"
        case onlineTop = "online/top"
        case nodesWeighted = "nodes/weighted"
        case nodesInstances = "nodes/instances"

        var method: String { rawValue.hasPrefix("push/") ? "POST" : "GET" }
    }

    /// Whether the route needs an API key when `api.keys` is set. Probes and scrapers get in without one.
    public var needsKey: Bool {
        switch self {
        case .healthz, .metrics: false
        default: true
        }
    }

    /// Whether `path` is under goim's `/goim/`: its errors answer goim's `{"code":-400,"message":…}` instead of the
    /// `/v1` envelope, whatever stage refused the request.
    public static func isGoim(_ path: some StringProtocol) -> Bool {
        path.hasPrefix("/goim/") || path == "/goim" || path.hasPrefix("/goim?")
    }

    public static func match(method: String, path: String) throws(APIError) -> APIRoute {
        // The push paths carry nearly every request: matched without splitting and decoding the path.
        if method == "POST" {
            if path == "/v1/push" { return .push }
            if path == "/v1/push/batch" { return .pushBatch }
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard path.hasPrefix("/"), let decoded = decode(segments) else { throw .notFound(path) }
        if decoded.count == 3, decoded[0] == "goim", let route = GoimRoute(rawValue: decoded[1] + "/" + decoded[2]) {
            // goim's gin router registers each path for one method: any other is gin's 404, not a 405.
            guard method == route.method else {
                throw APIError(
                    status: 404, code: "not_found", message: "404 page not found: goim serves \(path) for \(route.method) only")
            }
            return .goim(route)
        }
        let (allowed, route): ([String], APIRoute?) = switch decoded {
        case ["healthz"]: (["GET"], method == "GET" || method == "HEAD" ? .healthz : nil)
        case ["metrics"]: (["GET"], method == "GET" ? .metrics : nil)
        case ["v1", "push"]: (["POST"], method == "POST" ? .push : nil)
        case ["v1", "push", "batch"]: (["POST"], method == "POST" ? .pushBatch : nil)
        case ["v1", "register"]: (["POST"], method == "POST" ? .register : nil)
        case ["v1", "nodes"]: (["GET"], method == "GET" ? .nodes : nil)
        case ["v1", "presence"]: (["GET"], method == "GET" ? .presence : nil)
        case ["v1", "bans"]: (["GET", "POST"], method == "GET" ? .listBans : method == "POST" ? .addBan : nil)
        case ["v1", "route", "rules"]:
            (["GET", "PUT"], method == "GET" ? .routeRules : method == "PUT" ? .putRouteRules : nil)
        default: try userOrTopic(decoded, method: method, path: path)
        }
        guard let route else { throw .methodNotAllowed(method, allowed: allowed) }
        return route
    }

    private static func userOrTopic(_ s: [String], method: String, path: String) throws(APIError) -> ([String], APIRoute?) {
        switch s.count {
        case 3 where s[0] == "v1" && s[1] == "users" && !s[2].isEmpty:
            return (["GET"], method == "GET" ? .user(s[2]) : nil)
        case 3 where s[0] == "v1" && s[1] == "topics" && !s[2].isEmpty:
            return (["GET"], method == "GET" ? .topic(s[2]) : nil)
        case 4 where s[0] == "v1" && s[1] == "users" && !s[2].isEmpty && s[3] == "messages":
            return (["GET"], method == "GET" ? .userMessages(s[2]) : nil)
        case 4 where s[0] == "v1" && s[1] == "users" && !s[2].isEmpty && s[3] == "read":
            return (["POST"], method == "POST" ? .userRead(s[2]) : nil)
        case 3 where s[0] == "v1" && s[1] == "bans" && !s[2].isEmpty:
            return (["DELETE"], method == "DELETE" ? .removeBan(s[2]) : nil)
        case 5 where s[0] == "v1" && s[1] == "users" && !s[2].isEmpty && s[3] == "devices" && !s[4].isEmpty:
            return (["DELETE"], method == "DELETE" ? .kick(user: s[2], key: s[4]) : nil)
        case 6 where s[0] == "v1" && s[1] == "users" && !s[2].isEmpty && s[3] == "devices" && !s[4].isEmpty
            && s[5] == "push":
            let route: APIRoute? = switch method {
            case "PUT": .setPushToken(user: s[2], key: s[4])
            case "DELETE": .removePushToken(user: s[2], key: s[4])
            default: nil
            }
            return (["PUT", "DELETE"], route)
        default:
            throw .notFound(path)
        }
    }

    private static func decode(_ segments: [String]) -> [String]? {
        var result: [String] = []
        for segment in segments {
            guard let decoded = PercentDecoding.decode(segment) else { return nil }
            result.append(decoded)
        }
        return result
    }
}
