import Glibc
import PushCore
import PushPosix

/// `POST /v1/register` (SPEC §3, §8): a device's token, whether to hold a long connection (the route rules), and
/// the gateways of its group to dial, least loaded first.
extension PushAPI {
    /// `POST /v1/register` `{"user","device","platform","version"}`: a signed token for a user's device, the route
    /// rules' answer for it and the gateway addresses to connect to. 403 `banned` for a banned user or device.
    func register(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireJSON(request)
        guard let tokens else {
            throw .notImplemented("token signing is not configured: set auth.secret")
        }
        let body: JSONValue
        do {
            body = try JSONParser.parse(request.body)
        } catch {
            throw .badRequest("body is not JSON: \(error)")
        }
        guard let user = body["user"]?.identifier, AuthRequest.isValidIdentifier(user),
            let device = body["device"]?.identifier, AuthRequest.isValidIdentifier(device)
        else {
            throw .badRequest("user and device are required: non-empty, at most 256 bytes, no control characters")
        }
        var version: String?
        if let value = body["version"], !value.isNull {
            guard let text = value.identifier, AuthRequest.isValidIdentifier(text) else {
                throw .badRequest("version must be a string of at most 256 bytes without control characters")
            }
            version = text
        }
        if let ban = edge.bans.bansIdentity(user: user, device: device, now: EdgeState.now()) {
            stats.bannedRegisters += 1
            throw .banned(until: ban.expiresAt)
        }
        let route = edge.rules.decide(uid: user, device: device, version: version)
        let expiresAt = Posix.wallSeconds() + UInt64(config.auth.tokenTTL)
        let token = tokens.issue(user: user, device: device, expiresAt: expiresAt)
        let host = request.header("host")
        registry.fetch { [self] result in
            let (group, nodes) = Self.nodes(of: route.group ?? RouteRules.defaultGroup, (try? result.get()) ?? [])
            // Addresses least loaded first; workers of one host share an address, so their loads add up.
            // Browsers get the WebSocket addresses of the same hosts, in the same order, and TLS clients the TLS
            // (and WebSocket over TLS) ones.
            var load: [String: Int] = [:]
            var order: [String] = []
            var companions: [KeyPath<NodeRegistry.Node, String>: [String: String]] = [:]
            let kinds: [KeyPath<NodeRegistry.Node, String>] = [\.webSocketAddress, \.tlsAddress, \.wssAddress]
            for node in nodes {
                let address = dialable(node.address, host: host)
                if load[address] == nil { order.append(address) }
                load[address, default: 0] += node.connections
                for kind in kinds where !node[keyPath: kind].isEmpty {
                    companions[kind, default: [:]][address] = dialable(node[keyPath: kind], host: host)
                }
            }
            var gateways = order.sorted { (load[$0]!, $0) < (load[$1]!, $1) }
            var lists = kinds.map { kind in gateways.compactMap { companions[kind]?[$0] } }
            if gateways.isEmpty {
                let own = [config.server.tcp, config.server.websocket, config.server.tls, config.server.wss]
                    .map { $0.map { [dialable($0.description, host: host)] } ?? [] }
                gateways = own[0]
                lists = Array(own[1...])
            }
            // A client told to long-poll gets no gateway to dial.
            if !route.longConnection {
                gateways = []
                lists = lists.map { _ in [] }
            }
            respond(.json {
                $0.object {
                    $0.field("token", token)
                    $0.field("expires_at", expiresAt)
                    $0.key("gateways")
                    $0.array { writer in gateways.forEach { writer.value($0) } }
                    for (name, list) in zip(["websockets", "tls", "wss"], lists) {
                        $0.key(name)
                        $0.array { writer in list.forEach { writer.value($0) } }
                    }
                    $0.field("long_connection", route.longConnection)
                    $0.field("group", group)
                    $0.field("poll", "/v1/users/\(PercentEncoding.pathSegment(user))/messages")
                }
            })
        }
    }

    /// The live nodes with a client address that a user of `group` is sent to, and the group they are: the
    /// group's own; `default`'s when the group has none (a gray group with no node yet); every live node when
    /// `default` has none either (nodes of other groups only), rather than none.
    static func nodes(
        of group: String, _ live: [NodeRegistry.Node]
    ) -> (group: String, nodes: [NodeRegistry.Node]) {
        let dialable = live.filter { !$0.address.isEmpty }
        let own = dialable.filter { $0.group == group }
        if !own.isEmpty || group == RouteRules.defaultGroup { return (group, own.isEmpty ? dialable : own) }
        let fallback = dialable.filter { $0.group == RouteRules.defaultGroup }
        return (RouteRules.defaultGroup, fallback.isEmpty ? dialable : fallback)
    }

    /// An address as a device should dial it: a wildcard host (`0.0.0.0`, `[::]`) becomes the host name the
    /// backend used to reach this API.
    func dialable(_ address: String, host: String?) -> String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        let listenHost = address[..<colon]
        guard listenHost == "0.0.0.0" || listenHost == "[::]" else { return address }
        var name = host ?? "127.0.0.1"
        if name.hasPrefix("[") {
            name = String(name.prefix(through: name.firstIndex(of: "]") ?? name.endIndex))
        } else if let hostColon = name.lastIndex(of: ":") {
            name = String(name[..<hostColon])
        }
        return name + address[colon...]
    }
}
