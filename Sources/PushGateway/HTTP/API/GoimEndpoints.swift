import PushCore

/// goim's logic HTTP API (SPEC §3) over pushgw's servers, so goim's push tools and dashboards run unchanged:
/// `/goim/push/{keys,mids,room,all}?operation=…` with the raw message as the body, and the online and nodes
/// queries. Replies are goim's `{"code":0,"message":"","data":…}`; errors are goim's `{"code":-400|-500,
/// "message":…}` (internal/logic/http/result.go) with the HTTP status pushgw's /v1 API would give. goim pushes are
/// transient, as in goim.
extension PushAPI {
    func goim(_ route: APIRoute.GoimRoute, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
        do throws(APIError) {
            try goimRoute(route, request, respond: respond)
        } catch {
            respond(Self.goimError(error))
        }
    }

    private func goimRoute(_ route: APIRoute.GoimRoute, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        switch route {
        case .pushKeys, .pushMids, .pushRoom, .pushAll:
            try goimPush(route, request, respond: respond)
        case .onlineTotal:
            registry.fetch { result in
                switch result {
                case .failure(let error): respond(Self.goimError(Self.storageError(error)))
                case .success(let nodes):
                    respond(Self.goimReply {
                        $0.object {
                            $0.field("conn_count", nodes.reduce(0) { $0 + $1.connections })
                            $0.field("ip_count", Set(nodes.map(\.address)).count)
                        }
                    })
                }
            }
        case .onlineRoom:
            // goim's OnlineRoom: `res[room] = roomCount[EncodeRoomKey(typ, room)]`, keyed by the rooms as given.
            let type = try Self.goimRequired(request, "type")
            var seen: Set<String> = []
            let rooms = request.queryValues("rooms").filter { seen.insert($0).inserted }
            guard !rooms.isEmpty else { throw APIError.badRequest("rooms is required") }
            let ids = rooms.map { Self.roomID(type: type, room: $0) }
            let locals = ids.map { connections.rooms.count($0) }
            registry.groupCounts(zip(ids, locals).map { (RedisKeys.roomCountField($0), $1) }) { result in
                switch result {
                case .failure(let error): respond(Self.goimError(Self.storageError(error)))
                case .success(let counts):
                    respond(Self.goimReply { writer in
                        writer.object { for (room, count) in zip(rooms, counts) { $0.field(room, count) } }
                    })
                }
            }
        case .onlineTop:
            // goim's OnlineTop: the `limit` biggest rooms of `type` across every node, as {room_id, count} with the
            // room id without its `type://`.
            let type = try Self.goimRequired(request, "type")
            guard let text = request.queryParameter("limit"), let limit = Int(text), limit > 0 else {
                throw APIError.badRequest("limit must be a positive integer")
            }
            let prefix = RedisKeys.roomCountField(type + "://")
            let local = connections.rooms.counts.map { (RedisKeys.roomCountField($0.0), $0.1) }
            registry.groupCounts(prefix: prefix, local: local) { result in
                switch result {
                case .failure(let error): respond(Self.goimError(Self.storageError(error)))
                case .success(let counts):
                    let top = counts.filter { $0.value > 0 }
                        .map { (room: String($0.key.dropFirst(prefix.count)), count: $0.value) }
                        .sorted { ($1.count, $0.room) < ($0.count, $1.room) }
                        .prefix(limit)
                    respond(Self.goimReply { writer in
                        writer.array { writer in
                            for (room, count) in top {
                                writer.object {
                                    $0.field("room_id", room)
                                    $0.field("count", count)
                                }
                            }
                        }
                    })
                }
            }
        case .nodesWeighted:
            let host = request.header("host")
            registry.fetch { [self] result in
                var seen: Set<String> = []
                var addresses = ((try? result.get()) ?? []).filter { !$0.address.isEmpty }
                    .map { dialable($0.address, host: host) }.filter { seen.insert($0).inserted }
                if addresses.isEmpty, let tcp = config.server.tcp { addresses = [dialable(tcp.description, host: host)] }
                respond(Self.goimReply { self.writeWeighted(&$0, nodes: addresses) })
            }
        case .nodesInstances:
            let host = request.header("host")
            registry.fetch { [self] result in
                switch result {
                case .failure(let error): respond(Self.goimError(Self.storageError(error)))
                case .success(let nodes):
                    respond(Self.goimReply { writer in
                        writer.array { writer in for node in nodes { self.writeInstance(&writer, node, host: host) } }
                    })
                }
            }
        }
    }

    /// goim's NodesReply (api/logic/logic.proto), its fields in order and `omitempty` as protoc-gen-go writes them:
    /// no `domain` (pushgw has none), no port of a listener that is off, no `wss_port` (no WSS listener yet). The
    /// backoff is goim's logic-example.toml one; `heartbeat_max` is 1 because pushgw closes a connection silent for
    /// `heartbeat × 1.25 + 10 s`, so a client may not skip a whole heartbeat.
    private func writeWeighted(_ writer: inout JSONWriter, nodes: [String]) {
        writer.object {
            if let tcp = config.server.tcp { $0.field("tcp_port", Int(tcp.port)) }
            if let webSocket = config.server.websocket { $0.field("ws_port", Int(webSocket.port)) }
            $0.field("heartbeat", max(1, Int(config.limits.heartbeat.rounded(.up))))
            if !nodes.isEmpty {
                $0.key("nodes")
                $0.array { writer in nodes.forEach { writer.value($0) } }
            }
            $0.key("backoff")
            $0.object {
                $0.field("max_delay", 300)
                $0.field("base_delay", 3)
                $0.key("factor")
                $0.value(1.8)
                $0.key("jitter")
                $0.value(0.3)
            }
            $0.field("heartbeat_max", 1)
        }
    }

    /// One node as goim's NodesInstances shows a comet: discovery's `naming.Instance` (region, zone, env, appid,
    /// hostname, addrs, version, latest_timestamp in nanoseconds, metadata of strings), with the gateway's client
    /// listeners as `addrs` and their host as `metadata.addrs`. pushgw does not count client IPs: `ip_count` is 0.
    private func writeInstance(_ writer: inout JSONWriter, _ node: NodeRegistry.Node, host: String?) {
        let tcp = node.address.isEmpty ? nil : dialable(node.address, host: host)
        let webSocket = node.webSocketAddress.isEmpty ? nil : dialable(node.webSocketAddress, host: host)
        writer.object {
            $0.field("region", "")
            $0.field("zone", "")
            $0.field("env", "")
            $0.field("appid", "goim.comet")
            $0.field("hostname", node.id)
            $0.key("addrs")
            $0.array { writer in
                if let tcp { writer.value("tcp://" + tcp) }
                if let webSocket { writer.value("ws://" + webSocket) }
            }
            $0.field("version", "")
            $0.field("latest_timestamp", node.updatedAt &* 1_000_000_000)
            $0.key("metadata")
            $0.object {
                $0.field("weight", "10")
                $0.field("offline", "false")
                $0.field("addrs", Self.hostOf(tcp ?? webSocket ?? ""))
                $0.field("conn_count", String(node.connections))
                $0.field("ip_count", "0")
            }
        }
    }

    /// The host of `host:port` (`[::1]:3101` → `::1`).
    private static func hostOf(_ address: String) -> String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        var host = address[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return String(host)
    }

    private func goimPush(_ route: APIRoute.GoimRoute, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        let operation = try Self.goimOperation(request)
        let payload = request.body
        let done = { respond(Self.goimReply(nil as ((inout JSONWriter) -> Void)?)) }
        switch route {
        case .pushKeys:
            let keys = request.queryValues("keys")
            guard !keys.isEmpty, keys.allSatisfy(AuthRequest.isValidIdentifier) else {
                throw APIError.badRequest("keys is required: device keys, no control characters")
            }
            pipeline.push(toKeys: keys, op: operation, payload: payload)
            done()
        case .pushMids:
            let mids = request.queryValues("mids")
            guard !mids.isEmpty, mids.allSatisfy(AuthRequest.isValidIdentifier) else {
                throw APIError.badRequest("mids is required: user ids, no control characters")
            }
            pipeline.push(toUsers: mids, op: operation, payload: payload, done)
        case .pushRoom:
            let type = try Self.goimRequired(request, "type")
            let room = try Self.goimRequired(request, "room")
            pipeline.push(toRoom: Self.roomID(type: type, room: room), op: operation, payload: payload, done)
        default:
            pipeline.pushToAll(op: operation, payload: payload, done)
        }
    }

    /// goim's `operation`, required. Only application operations may be pushed (SPEC §2, as /v1 requires): a
    /// backend must not be able to make a client read a DISCONNECT, ERROR, AUTH_REPLY or RAW it never got.
    private static func goimOperation(_ request: HTTPRequest) throws(APIError) -> Operation {
        guard let text = request.queryParameter("operation"), !text.isEmpty else {
            throw .badRequest("operation is required")
        }
        guard let op = Int64(text) else { throw .badRequest("operation must be an integer") }
        guard op >= Int64(Operation.firstApplication) else {
            throw .badRequest("operation must be an application operation, 1000 or above")
        }
        guard op <= Int64(UInt32.max) else { throw .badRequest("operation must be at most \(UInt32.max)") }
        return Operation(UInt32(op))
    }

    /// A query parameter goim binds as `binding:"required"`: present and not empty.
    private static func goimRequired(_ request: HTTPRequest, _ name: String) throws(APIError) -> String {
        guard let value = request.queryParameter(name), !value.isEmpty else { throw .badRequest("\(name) is required") }
        return value
    }

    /// goim's room id: `type://room` (model.EncodeRoomKey).
    static func roomID(type: String, room: String) -> String { "\(type)://\(room)" }

    /// `{"code":0,"message":""}` with `data` written by `build`, if any.
    static func goimReply(_ build: ((inout JSONWriter) -> Void)?) -> HTTPResponse {
        .json {
            $0.object {
                $0.field("code", 0)
                $0.field("message", "")
                if let build {
                    $0.key("data")
                    build(&$0)
                }
            }
        }
    }

    /// goim's error body, `{"code":…,"message":…}` with goim's codes (RequestErr -400 for what the request got
    /// wrong, ServerErr -500 for what failed here), under the HTTP status and headers (`Retry-After`, …) /v1 gives.
    static func goimError(_ error: APIError) -> HTTPResponse {
        var response = HTTPResponse.json(status: error.status) {
            $0.object {
                $0.field("code", error.status >= 500 ? -500 : -400)
                $0.field("message", error.message)
            }
        }
        response.headers = error.headers
        return response
    }
}
