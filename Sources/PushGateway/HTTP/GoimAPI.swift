import PushCore

/// goim's logic HTTP API (SPEC §3) over pushgw's servers, so goim's push tools and dashboards run unchanged:
/// `/goim/push/{keys,mids,room,all}?operation=…` with the raw message as the body, and the online and nodes
/// queries. Replies are goim's `{"code":0,"message":"","data":…}`; errors keep the right HTTP status and carry
/// goim's negative code. goim pushes are transient, as in goim.
extension PushAPI {
    func goim(_ route: APIRoute.GoimRoute, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
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
            let type = request.queryParameter("type") ?? ""
            let rooms = request.queryValues("rooms")
            guard !rooms.isEmpty else { throw APIError.badRequest("rooms is required") }
            let ids = rooms.map { Self.roomID(type: type, room: $0) }
            let locals = ids.map { connections.rooms.count($0) }
            registry.groupCounts(zip(ids, locals).map { ("r:" + $0, $1) }) { result in
                let counts = (try? result.get()) ?? locals
                respond(Self.goimReply { writer in writer.object { for (id, count) in zip(ids, counts) { $0.field(id, count) } } })
            }
        case .onlineTop:
            let type = request.queryParameter("type") ?? ""
            let limit = Int(request.queryParameter("limit") ?? "") ?? 20
            let top = connections.rooms.counts
                .filter { type.isEmpty || $0.0.hasPrefix(type + "://") }
                .sorted { ($1.1, $0.0) < ($0.1, $1.0) }
                .prefix(max(1, limit))
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
        case .nodesWeighted, .nodesInstances:
            let host = request.header("host")
            registry.fetch { [self] result in
                let nodes = (try? result.get()) ?? []
                var seen: Set<String> = []
                let addresses = nodes.map { dialable($0.address, host: host) }.filter { seen.insert($0).inserted }
                if route == .nodesInstances {
                    return respond(Self.goimReply { writer in
                        writer.array { writer in
                            for node in nodes {
                                let address = self.dialable(node.address, host: host)
                                writer.object {
                                    $0.field("id", node.id)
                                    $0.field("address", address)
                                    $0.field("conn_count", node.connections)
                                }
                            }
                        }
                    })
                }
                let (tcpPort, wsPort, heartbeat) = (
                    Int(config.server.tcp?.port ?? 0), Int(config.server.websocket?.port ?? 0), Int(config.limits.heartbeat)
                )
                respond(Self.goimReply {
                    $0.object {
                        $0.field("domain", "")
                        $0.field("tcp_port", tcpPort)
                        $0.field("ws_port", wsPort)
                        $0.field("wss_port", 0)
                        $0.field("heartbeat", heartbeat)
                        $0.field("heartbeat_max", 3)
                        $0.key("nodes")
                        $0.array { writer in addresses.forEach { writer.value($0) } }
                        $0.key("backoff")
                        $0.object {
                            $0.field("max_delay", 300)
                            $0.field("base_delay", 3)
                            $0.key("factor")
                            $0.value(1.8)
                            $0.key("jitter")
                            $0.value(1.3)
                        }
                    }
                })
            }
        }
    }

    private func goimPush(_ route: APIRoute.GoimRoute, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        guard let text = request.queryParameter("operation"), let op = UInt32(text) else {
            throw APIError.badRequest("operation must be a non-negative integer")
        }
        let operation = Operation(op)
        let payload = request.body
        let encoded = ConnectionServer.encode(op, payload)
        stats.pushes += 1
        let done = { respond(Self.goimReply(nil as ((inout JSONWriter) -> Void)?)) }
        switch route {
        case .pushKeys:
            let keys = request.queryValues("keys")
            guard !keys.isEmpty, keys.allSatisfy(AuthRequest.isValidIdentifier) else { throw APIError.badRequest("keys is required") }
            for key in keys {
                _ = connections.deliver(toKey: key, encoded, operation: operation)
                store.publish(RedisKeys.broadcastChannel, .keyed(origin: store.node, key: key, op: op, payload: payload))
            }
            done()
        case .pushMids:
            let mids = request.queryValues("mids")
            guard !mids.isEmpty, mids.allSatisfy(AuthRequest.isValidIdentifier) else { throw APIError.badRequest("mids is required") }
            self.route(mids.map { ($0, nil) }, op: operation, payload: payload, encoded: encoded) { _ in done() }
        case .pushRoom:
            guard let room = request.queryParameter("room"), !room.isEmpty else { throw APIError.badRequest("room is required") }
            let id = Self.roomID(type: request.queryParameter("type") ?? "", room: room)
            connections.queueRoomMessage(id, op: op, payload: payload)
            store.publish(RedisKeys.broadcastChannel, .broadcast(origin: store.node, room: id, op: op, payload: payload))
            done()
        default:
            _ = connections.deliverToAll(encoded, operation: operation)
            store.publish(RedisKeys.broadcastChannel, .broadcast(origin: store.node, room: nil, op: op, payload: payload))
            done()
        }
    }

    /// goim's room id: `type://room`.
    static func roomID(type: String, room: String) -> String { type.isEmpty ? room : "\(type)://\(room)" }

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

    static func goimError(_ error: APIError) -> HTTPResponse {
        .json(status: error.status) {
            $0.object {
                $0.field("code", -error.status)
                $0.field("message", error.message)
            }
        }
    }
}
