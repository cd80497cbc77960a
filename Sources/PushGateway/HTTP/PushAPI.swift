import Glibc
import PushCore

/// The push, user and register servers' HTTP endpoints (SPEC §3). Stored pushes go through Redis before
/// anyone hears 200; transient ones go to the local connections at once.
final class PushAPI {
    let connections: ConnectionServer
    let store: MessageStore
    let stats: WorkerStats
    let config: GatewayConfiguration
    /// Signs tokens for `/v1/register`; nil when `auth.secret` is not set.
    private let tokens: TokenSigner?
    private let waiters: LongPolls
    let registry: NodeRegistry
    private var idGenerator = SplitMix64()

    /// How long an idempotency key is remembered.
    static let idempotencyTTL = 86_400

    init(
        connections: ConnectionServer, store: MessageStore, registry: NodeRegistry, stats: WorkerStats,
        config: GatewayConfiguration
    ) {
        self.connections = connections
        self.registry = registry
        self.store = store
        self.stats = stats
        self.config = config
        tokens = config.auth.secret.map { TokenSigner(authenticator: OpenSSLHMAC(secret: $0)) }
        waiters = LongPolls(loop: connections.loop, store: store)
        waiters.retry = { [unowned self] in self.poll($0) }
        connections.onStored = { [unowned self] user in self.waiters.wake(user) }
        // A message published while the node channel was down is lost; one stored while Redis was away from
        // this worker may have been: every parked poll asks again once both connections are back.
        store.whenReady { [unowned self] in self.waiters.recheckAll() }
        store.whenNodeChannelReady { [unowned self] in if self.store.isAvailable { self.waiters.recheckAll() } }
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
            case .push:
                try requireJSON(request)
                push(try PushRequest(body: request.body)) { outcome in
                    switch outcome {
                    case .success(let body): respond(HTTPResponse(body: body))
                    case .failure(let error): respond(HTTPResponse(error))
                    }
                }
            case .pushBatch:
                try requireJSON(request)
                batch(try PushBatch(body: request.body), respond: respond)
            case .register: try register(request, respond: respond)
            case .user(let user): userInfo(user, respond: respond)
            case .userRead(let user): try read(user, request, respond: respond)
            case .userMessages(let user): try messages(user, request, respond: respond)
            case .kick(let user, let key): kick(user, key: key, respond: respond)
            case .nodes: nodes(respond: respond)
            case .topic(let name): topicCount(name, respond: respond)
            case .goim(let route): goim(route, request, respond: respond)
            case .metrics: stats.serveMetrics(respond)
            }
        } catch {
            respond(HTTPResponse(error))
        }
    }

    // MARK: - Health

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

    // MARK: - Push

    /// The answer to one push: a reply body, or an error.
    typealias PushOutcome = Result<[UInt8], APIError>

    private func batch(_ batch: PushBatch, respond: @escaping (HTTPResponse) -> Void) {
        var outcomes = [PushOutcome?](repeating: nil, count: batch.items.count)
        var remaining = batch.items.count
        for (index, item) in batch.items.enumerated() {
            let finish: (PushOutcome) -> Void = { outcome in
                outcomes[index] = outcome
                remaining -= 1
                guard remaining == 0 else { return }
                respond(.json {
                    $0.object {
                        $0.key("results")
                        $0.array { writer in
                            for outcome in outcomes {
                                switch outcome! {
                                case .success(let body): writer.raw(body)
                                case .failure(let error): writer.raw(error.bodyWithStatus)
                                }
                            }
                        }
                    }
                })
            }
            switch item {
            case .success(let push): self.push(push, finish)
            case .failure(let error): finish(.failure(error))
            }
        }
    }

    /// `POST /v1/push` (and each item of a batch).
    ///
    /// A stored push always carries an idempotency key: the backend's `id`, or one generated here and kept
    /// `generatedIdempotencyTTL` seconds, so that a push whose outcome is unknown (the connection to Redis was lost
    /// or stalled with the script in flight) can be retried with the id its 503 names and is stored exactly once.
    private func push(_ push: PushRequest, _ done: @escaping (PushOutcome) -> Void) {
        stats.pushes += 1
        let generated = push.id == nil
        let id = push.id ?? makeID()
        guard push.store else { return transient(push, id: id, done) }
        var users: [String] = []
        switch push.target {
        case .users(let list): users = list
        case .devices(let devices):
            // A stored push lands in the user's inbox, which every device of the user follows (SPEC §2).
            for device in devices where !users.contains(device.user) { users.append(device.user) }
        case .topic, .all: return transient(push, id: id, done)
        }
        guard store.isAvailable else {
            return done(.failure(Self.notStored(id: id, users: users, outcomes: [], "Redis is not available")))
        }
        let hash = push.bodyHash
        let idemTTL = generated ? Self.generatedIdempotencyTTL : Self.idempotencyTTL
        let now = Self.nowMillis()
        let ttl = push.ttl ?? config.inbox.ttl
        var outcomes = [StoreOutcome](repeating: .notStored, count: users.count)
        var failure: StoreFailure?
        var remaining = users.count
        for (index, user) in users.enumerated() {
            let call = StoreCall(
                uid: user, op: push.operation.rawValue, payload: push.payload, nowMillis: now, ttl: ttl,
                inboxMax: config.inbox.max, inboxTTL: config.inbox.ttl, node: store.node,
                idempotency: (id, hash), idemTTL: idemTTL, freshID: generated)
            store.run(call) { [self] result in
                switch result {
                case .success(let stored):
                    outcomes[index] = .answered(stored)
                    if case .stored(let seq, _, _, _) = stored {
                        stats.stored += 1
                        let message = StoredMessage(
                            seq: seq, op: push.operation.rawValue, timestampMillis: now,
                            expiresAt: ttl > 0 ? now / 1000 + UInt64(ttl) : 0, payload: push.payload)
                        connections.deliverStored(message, toUser: user)
                    }
                case .failure(let error):
                    outcomes[index] = error.mayHaveRun ? .unknown : .notStored
                    failure = error
                }
                remaining -= 1
                guard remaining == 0 else { return }
                done(storedReply(id: id, users: users, outcomes: outcomes, failure: failure))
            }
        }
    }

    /// Seconds the idempotency record of a push without an `id` is kept: long enough for a backend to retry a
    /// 503 whose outcome was unknown, short enough that Redis does not keep one record per push for a day.
    /// (Centrifugo keeps its idempotency results 5 minutes.) The time counts from when Redis ran the store.
    static let generatedIdempotencyTTL = 300

    /// What became of a stored push for one user.
    enum StoreOutcome {
        /// Redis answered.
        case answered(StoreResult)
        /// Redis certainly did not run it (not connected, or refused before sending).
        case notStored
        /// Sent, and no answer came (connection lost or stalled): it may have been stored.
        case unknown
    }

    private func storedReply(id: String, users: [String], outcomes: [StoreOutcome], failure: StoreFailure?) -> PushOutcome {
        if let failure {
            return .failure(Self.notStored(id: id, users: users, outcomes: outcomes, "Redis did not store the push (\(failure))"))
        }
        if outcomes.contains(where: { if case .answered(.conflict) = $0 { true } else { false } }) {
            return .failure(.conflict("id \(id) was already used for a different push"))
        }
        var writer = JSONWriter()
        writer.object {
            $0.field("id", id)
            $0.key("seqs")
            $0.object { writer in
                for (user, outcome) in zip(users, outcomes) {
                    if case .answered(let result) = outcome { writer.field(user, result.seq ?? 0) }
                }
            }
            $0.key("online")
            $0.object { writer in
                for (user, outcome) in zip(users, outcomes) {
                    let devices = if case .answered(.stored(_, _, _, let devices)) = outcome { devices } else { 0 }
                    writer.field(user, max(devices, connections.users.count(of: user)))
                }
            }
        }
        return .success(writer.bytes)
    }

    /// The 503 of a stored push that Redis did not (certainly) store for every user. Its body says which:
    /// `"stored"` is `"none"` (nothing stored: retrying is safe with or without the id), `"partial"` (stored for
    /// the users in `seqs`, certainly not for the others) or `"unknown"` (some user's store was sent and never
    /// answered: it may have been stored); `id` is the key to retry with, which stores the rest exactly once.
    static func notStored(id: String, users: [String], outcomes: [StoreOutcome], _ reason: String) -> APIError {
        var stored: [(String, UInt64)] = []
        var unknown: [String] = []
        for (user, outcome) in zip(users, outcomes) {
            switch outcome {
            case .answered(let result): if let seq = result.seq { stored.append((user, seq)) }
            case .unknown: unknown.append(user)
            case .notStored: break
            }
        }
        let state = !unknown.isEmpty ? "unknown" : stored.isEmpty ? "none" : "partial"
        let summary = switch state {
        case "unknown": "it may have been stored for \(unknown.count) of \(users.count) users"
        case "partial": "stored for \(stored.count) of \(users.count) users, not for the others"
        default: "nothing was stored"
        }
        var error = APIError.unavailable("\(reason): \(summary); retry with id \(id) to store it exactly once")
        var details = JSONWriter()
        details.object {
            $0.field("id", id)
            $0.field("stored", state)
            $0.key("seqs")
            $0.object { writer in for (user, seq) in stored { writer.field(user, seq) } }
        }
        error.details = Array(details.bytes.dropFirst().dropLast())
        return error
    }

    /// A transient push: delivered to the connections online on this node now, and published to the other
    /// nodes that hold the addressed users' sessions (or to every node, for topics and broadcasts). Never stored;
    /// with Redis down it still reaches this node's connections (at-most-once, SPEC §2).
    private func transient(_ push: PushRequest, id: String, _ done: @escaping (PushOutcome) -> Void) {
        let op = push.operation
        let encoded = ConnectionServer.encode(op.rawValue, push.payload)
        switch push.target {
        case .users(let users):
            route(users.map { ($0, nil) }, op: op, payload: push.payload, encoded: encoded) { online in
                done(.success(Self.transientReply(id: id, online: online)))
            }
        case .devices(let devices):
            route(devices.map { ($0.user, $0.key) }, op: op, payload: push.payload, encoded: encoded) { online in
                done(.success(Self.transientReply(id: id, online: online)))
            }
        case .all:
            let delivered = connections.deliverToAll(encoded, operation: op)
            let message = NodeMessage.broadcast(origin: store.node, room: nil, op: op.rawValue, payload: push.payload)
            store.publish(RedisKeys.broadcastChannel, message) { nodes in
                done(.success(Self.fanOutReply(id: id, delivered: delivered, nodes: nodes)))
            }
        case .topic(let topic):
            let delivered = connections.deliver(encoded, operation: op, toMembersOf: connections.topics, topic)
            let message = NodeMessage.topic(origin: store.node, topic: topic, op: op.rawValue, payload: push.payload)
            store.publish(RedisKeys.topicChannel(topic), message) { nodes in
                done(.success(Self.fanOutReply(id: id, delivered: delivered, nodes: nodes)))
            }
        }
    }

    /// Delivers to each (user, device) here and routes it to the other nodes with their sessions; `done` gets
    /// each user's online device count (all nodes when Redis answers, else this node's).
    func route(
        _ targets: [(user: String, device: String?)], op: Operation, payload: [UInt8], encoded: [UInt8],
        _ done: @escaping ([(String, Int)]) -> Void
    ) {
        var online: [(String, Int)] = []
        var remaining = targets.count
        for (user, device) in targets {
            let local = connections.deliver(encoded, operation: op, toUser: user, device: device).online
            let index = online.firstIndex { $0.0 == user } ?? {
                online.append((user, 0))
                return online.count - 1
            }()
            if connections.sessionsOnlyHere(user) {
                online[index].1 += local
                remaining -= 1
                if remaining == 0 { done(online) }
                continue
            }
            let message = NodeMessage.transient(user: user, device: device, op: op.rawValue, payload: payload)
            store.run(RouteCall(uid: user, node: store.node, message: message, device: device)) { result in
                if case .success(let routed) = result {
                    online[index].1 += max(routed.devices, local)
                } else {
                    online[index].1 += local
                }
                remaining -= 1
                if remaining == 0 { done(online) }
            }
        }
    }

    private static func transientReply(id: String, online: [(String, Int)]) -> [UInt8] {
        var writer = JSONWriter()
        writer.object {
            $0.field("id", id)
            $0.key("seqs")
            $0.object { _ in }
            $0.key("online")
            $0.object { writer in for (user, count) in online { writer.field(user, count) } }
        }
        return writer.bytes
    }

    /// A topic or broadcast answer: connections reached here, and other nodes the message was published to.
    private static func fanOutReply(id: String, delivered: Int, nodes: Int) -> [UInt8] {
        var writer = JSONWriter()
        writer.object {
            $0.field("id", id)
            $0.field("delivered", delivered)
            $0.field("nodes", nodes)
        }
        return writer.bytes
    }

    // MARK: - Nodes and topics

    /// `GET /v1/nodes`: the live nodes, least loaded first.
    private func nodes(respond: @escaping (HTTPResponse) -> Void) {
        registry.fetch { result in
            switch result {
            case .failure(let error): respond(HTTPResponse(Self.storageError(error)))
            case .success(let nodes):
                respond(.json {
                    $0.object {
                        $0.key("nodes")
                        $0.array { writer in
                            for node in nodes {
                                writer.object {
                                    $0.field("id", node.id)
                                    $0.field("address", node.address)
                                    $0.field("connections", node.connections)
                                    $0.field("updated_at", node.updatedAt)
                                }
                            }
                        }
                    }
                })
            }
        }
    }

    /// `GET /v1/topics/{name}`: members across the live nodes.
    private func topicCount(_ topic: String, respond: @escaping (HTTPResponse) -> Void) {
        registry.groupCount("t:" + topic, local: connections.topics.count(topic)) { result in
            switch result {
            case .success(let online): respond(.json { $0.object { $0.field("online", online) } })
            case .failure(let error): respond(HTTPResponse(Self.storageError(error)))
            }
        }
    }

    // MARK: - Users

    /// `GET /v1/users/{uid}`.
    private func userInfo(_ user: String, respond: @escaping (HTTPResponse) -> Void) {
        store.run(UserCall(uid: user)) { result in
            switch result {
            case .success(let info):
                respond(.json {
                    $0.object {
                        $0.field("online", !info.sessions.isEmpty)
                        $0.key("devices")
                        $0.array { writer in
                            for session in info.sessions {
                                writer.object {
                                    $0.field("key", session.key)
                                    $0.field("node", session.node)
                                    $0.field("platform", session.platform)
                                    $0.field("since", session.since)
                                }
                            }
                        }
                        $0.field("unread", info.unread)
                        $0.field("last_seq", info.seq)
                        $0.field("read_seq", info.read)
                    }
                })
            case .failure(let error):
                respond(HTTPResponse(Self.storageError(error)))
            }
        }
    }

    /// `POST /v1/users/{uid}/read` with `{"seq":N}`.
    private func read(_ user: String, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireJSON(request)
        guard let json = try? JSONParser.parse(request.body), let seq = json["seq"]?.int64Value, seq >= 0 else {
            throw .badRequest("body must be {\"seq\":N} with N ≥ 0")
        }
        store.run(ReadCall(uid: user, seq: UInt64(seq))) { result in
            switch result {
            case .success(let read): respond(.json { $0.object { $0.field("unread", read.unread) } })
            case .failure(let error): respond(HTTPResponse(Self.storageError(error)))
            }
        }
    }

    /// `GET /v1/users/{uid}/messages?after=N&limit=L&wait=S`: stored messages after N, long-polling up to S
    /// seconds for the first one.
    private func messages(_ user: String, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        func number(_ name: String, _ range: ClosedRange<Int>, default value: Int) throws(APIError) -> Int {
            guard let text = request.queryParameter(name) else { return value }
            guard let number = Int(text), range.contains(number) else {
                throw .badRequest("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }
        var poll = LongPolls.Poll(
            user: user, after: UInt64(try number("after", 0...Int.max, default: 0)),
            limit: try number("limit", 1...config.inbox.max, default: min(100, config.inbox.max)),
            wait: try number("wait", 0...LongPolls.maxWait, default: 0), respond: respond)
        if poll.wait > 0 { waiters.watch(&poll) }
        self.poll(poll)
    }

    /// Answers `poll` now if anything is there (or it does not wait), else parks it until a store or its time.
    private func poll(_ poll: LongPolls.Poll) {
        let call = SyncCall(uid: poll.user, after: poll.after, limit: poll.limit, nowSeconds: UInt64(time(nil)))
        store.run(call) { [self] result in
            switch result {
            case .success(let sync) where sync.messages.isEmpty && poll.wait > 0 && !waiters.expired(poll):
                return waiters.park(poll)
            case .success(let sync):
                poll.respond(Self.messagesReply(sync))
            case .failure(let error):
                poll.respond(HTTPResponse(Self.storageError(error)))
            }
            if poll.wait > 0 { waiters.finish(poll) }
        }
    }

    private static func messagesReply(_ sync: SyncResult) -> HTTPResponse {
        .json {
            $0.object {
                $0.key("messages")
                $0.array { writer in
                    for message in sync.messages {
                        writer.object {
                            $0.field("seq", message.seq)
                            $0.field("op", Int(message.op))
                            $0.field("ts", message.timestampMillis)
                            if (try? JSONParser.parse(message.payload)) != nil {
                                $0.key("payload")
                                $0.raw(message.payload)
                            } else {
                                $0.field("payload_b64", Base64.encode(message.payload))
                            }
                        }
                    }
                }
                $0.field("last_seq", sync.seq)
            }
        }
    }

    /// `DELETE /v1/users/{uid}/devices/{key}`: DISCONNECT to the device here, and its session removed.
    private func kick(_ user: String, key: String, respond: @escaping (HTTPResponse) -> Void) {
        let kicked = connections.kick(user: user, key: key)
        let message = NodeMessage.kick(user: user, device: key)
        store.run(RouteCall(uid: user, node: store.node, message: message, device: key)) { _ in }
        store.command(["HDEL", RedisKeys.sessions(user), key]) { removed in
            guard removed || kicked > 0 else {
                return respond(HTTPResponse(APIError.unavailable("Redis is not available: the session was not removed")))
            }
            respond(.json {
                $0.object {
                    $0.field("kicked", kicked)
                    $0.field("session_removed", removed)
                }
            })
        }
    }

    // MARK: - Register

    /// `POST /v1/register`: a signed token for a user's device and the gateway addresses to connect to.
    private func register(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
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
        let expiresAt = UInt64(time(nil)) + UInt64(config.auth.tokenTTL)
        let token = tokens.issue(user: user, device: device, expiresAt: expiresAt)
        let host = request.header("host")
        registry.fetch { [self] result in
            // Addresses least loaded first; workers of one host share an address, so their loads add up.
            // Browsers get the WebSocket addresses of the same hosts, in the same order.
            var load: [String: Int] = [:]
            var order: [String] = []
            var webSocketOf: [String: String] = [:]
            for node in (try? result.get()) ?? [] where !node.address.isEmpty {
                let address = dialable(node.address, host: host)
                if load[address] == nil { order.append(address) }
                load[address, default: 0] += node.connections
                if !node.webSocketAddress.isEmpty { webSocketOf[address] = dialable(node.webSocketAddress, host: host) }
            }
            var gateways = order.sorted { (load[$0]!, $0) < (load[$1]!, $1) }
            var webSockets = gateways.compactMap { webSocketOf[$0] }
            if gateways.isEmpty {
                gateways = config.server.tcp.map { [dialable($0.description, host: host)] } ?? []
                webSockets = config.server.websocket.map { [dialable($0.description, host: host)] } ?? []
            }
            respond(.json {
                $0.object {
                    $0.field("token", token)
                    $0.field("expires_at", expiresAt)
                    $0.key("gateways")
                    $0.array { writer in gateways.forEach { writer.value($0) } }
                    $0.key("websockets")
                    $0.array { writer in webSockets.forEach { writer.value($0) } }
                }
            })
        }
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

    // MARK: - Helpers

    /// A body is read as JSON when its type says so, when no type is given, or when it is curl's default for
    /// `-d` (`application/x-www-form-urlencoded`) and the body starts like a JSON object or array: `curl -d '{…}'`
    /// works without `-H`. Any other type is 415.
    private func requireJSON(_ request: HTTPRequest) throws(APIError) {
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
        }
    }

    static func nowMillis() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }

    /// A push id when the backend gave none: 16 random hex digits (not a secret: a fast generator seeded once).
    func makeID() -> String {
        let value = idGenerator.next()
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
