import Glibc
import PushCore

/// The push, user and register servers' HTTP endpoints (SPEC §3). Stored pushes go through Redis before
/// anyone hears 200; transient ones go to the local connections at once.
final class PushAPI {
    private let connections: ConnectionServer
    private let store: MessageStore
    private let stats: WorkerStats
    private let config: GatewayConfiguration
    /// Signs tokens for `/v1/register`; nil when `auth.secret` is not set.
    private let tokens: TokenSigner?
    private let waiters: LongPolls

    /// How long an idempotency key is remembered.
    static let idempotencyTTL = 86_400

    init(connections: ConnectionServer, store: MessageStore, stats: WorkerStats, config: GatewayConfiguration) {
        self.connections = connections
        self.store = store
        self.stats = stats
        self.config = config
        tokens = config.auth.secret.map { TokenSigner(authenticator: OpenSSLHMAC(secret: $0)) }
        waiters = LongPolls(loop: connections.loop)
        waiters.retry = { [unowned self] in self.poll($0) }
        connections.onStored = { [unowned self] user in self.waiters.wake(user) }
    }

    func handle(_ route: APIRoute, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
        do throws(APIError) {
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
            case .register: respond(try register(request))
            case .user(let user): userInfo(user, respond: respond)
            case .userRead(let user): try read(user, request, respond: respond)
            case .userMessages(let user): try messages(user, request, respond: respond)
            case .kick(let user, let key): kick(user, key: key, respond: respond)
            case .topic, .nodes, .metrics:
                throw APIError.notImplemented("\(request.method) \(request.path) is not served by this build yet")
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
    private func push(_ push: PushRequest, _ done: @escaping (PushOutcome) -> Void) {
        stats.pushes += 1
        let id = push.id ?? PushAPI.makeID()
        guard push.store else { return done(transient(push, id: id)) }
        guard store.isAvailable else {
            return done(.failure(.unavailable("Redis is not available: the push was not stored")))
        }
        var users: [String] = []
        switch push.target {
        case .users(let list): users = list
        case .devices(let devices):
            // A stored push lands in the user's inbox, which every device of the user follows (SPEC §2).
            for device in devices where !users.contains(device.user) { users.append(device.user) }
        case .topic, .all: return done(transient(push, id: id))
        }
        let hash = push.id == nil ? nil : bodyHash(Array("\(push.target)|\(push.operation)|\(push.ttl ?? 0)|".utf8) + push.payload)
        let now = Self.nowMillis()
        let ttl = push.ttl ?? config.inbox.ttl
        var results = [StoreResult?](repeating: nil, count: users.count)
        var failure: StoreFailure?
        var remaining = users.count
        for (index, user) in users.enumerated() {
            let call = StoreCall(
                uid: user, op: push.operation.rawValue, payload: push.payload, nowMillis: now, ttl: ttl,
                inboxMax: config.inbox.max, inboxTTL: config.inbox.ttl, node: store.node,
                idempotency: hash.map { (id, $0) }, idemTTL: Self.idempotencyTTL)
            store.run(call) { [self] result in
                switch result {
                case .success(let stored):
                    results[index] = stored
                    if case .stored(let seq, _, _) = stored {
                        stats.stored += 1
                        let message = StoredMessage(
                            seq: seq, op: push.operation.rawValue, timestampMillis: now,
                            expiresAt: ttl > 0 ? now / 1000 + UInt64(ttl) : 0, payload: push.payload)
                        connections.deliverStored(message, toUser: user)
                    }
                case .failure(let error):
                    failure = error
                }
                remaining -= 1
                guard remaining == 0 else { return }
                done(storedReply(id: id, users: users, results: results, failure: failure))
            }
        }
    }

    private func storedReply(id: String, users: [String], results: [StoreResult?], failure: StoreFailure?) -> PushOutcome {
        if let failure {
            let stored = zip(users, results).compactMap { $1?.seq == nil ? nil : $0 }
            return .failure(.unavailable(
                "Redis did not store the push (\(failure)); stored for \(stored.count) of \(users.count) users"
                    + " — retry with the same id to store the rest exactly once"))
        }
        if results.contains(.conflict) {
            return .failure(.conflict("id \(id) was already used for a different push"))
        }
        var writer = JSONWriter()
        writer.object {
            $0.field("id", id)
            $0.key("seqs")
            $0.object { writer in
                for (user, result) in zip(users, results) { writer.field(user, result?.seq ?? 0) }
            }
            $0.key("online")
            $0.object { writer in
                for (user, result) in zip(users, results) {
                    let remote = if case .stored(_, _, let published) = result { published } else { 0 }
                    writer.field(user, connections.users.count(of: user) + remote)
                }
            }
        }
        return .success(writer.bytes)
    }

    /// A transient push: delivered to the connections online on this node now, never stored.
    private func transient(_ push: PushRequest, id: String) -> PushOutcome {
        var encoded: [UInt8] = []
        encoded.reserveCapacity(FrameLayout.headerLength + push.payload.count)
        Frame.encode(operation: push.operation, sequence: 0, body: push.payload, into: &encoded)
        var writer = JSONWriter()
        switch push.target {
        case .users(let users):
            writer.object {
                $0.field("id", id)
                $0.key("seqs")
                $0.object { _ in }
                $0.key("online")
                $0.object { writer in
                    for user in users {
                        writer.field(user, connections.deliver(encoded, operation: push.operation, toUser: user).online)
                    }
                }
            }
        case .devices(let devices):
            var online: [(String, Int)] = []
            for device in devices {
                let count = connections.deliver(encoded, operation: push.operation, toUser: device.user, device: device.key).online
                if let index = online.firstIndex(where: { $0.0 == device.user }) {
                    online[index].1 += count
                } else {
                    online.append((device.user, count))
                }
            }
            writer.object {
                $0.field("id", id)
                $0.key("seqs")
                $0.object { _ in }
                $0.key("online")
                $0.object { writer in for (user, count) in online { writer.field(user, count) } }
            }
        case .all:
            let delivered = connections.deliverToAll(encoded, operation: push.operation)
            writer.object {
                $0.field("id", id)
                $0.field("delivered", delivered)
            }
        case .topic:
            return .failure(.notImplemented("topics are not served by this build yet"))
        }
        return .success(writer.bytes)
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
        let poll = LongPolls.Poll(
            user: user, after: UInt64(try number("after", 0...Int.max, default: 0)),
            limit: try number("limit", 1...config.inbox.max, default: min(100, config.inbox.max)),
            wait: try number("wait", 0...300, default: 0), respond: respond)
        self.poll(poll)
    }

    /// Answers `poll` now if anything is there (or it does not wait), else parks it until a store or its time.
    private func poll(_ poll: LongPolls.Poll) {
        let call = SyncCall(uid: poll.user, after: poll.after, limit: poll.limit, nowSeconds: UInt64(time(nil)))
        store.run(call) { [self] result in
            switch result {
            case .success(let sync) where sync.messages.isEmpty && poll.wait > 0 && !waiters.expired(poll):
                waiters.park(poll)
            case .success(let sync):
                poll.respond(Self.messagesReply(sync))
            case .failure(let error):
                poll.respond(HTTPResponse(Self.storageError(error)))
            }
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
    private func register(_ request: HTTPRequest) throws(APIError) -> HTTPResponse {
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

    // MARK: - Helpers

    /// A body must be JSON when its type is given at all.
    private func requireJSON(_ request: HTTPRequest) throws(APIError) {
        guard let type = request.header("content-type") else { return }
        let base = type.split(separator: ";").first.map { String($0).lowercased() } ?? ""
        guard base.trimmingSpaces == "application/json" else { throw .unsupportedMediaType(type) }
    }

    private static func storageError(_ failure: StoreFailure) -> APIError {
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

    /// A push id when the backend gave none: 16 random hex digits.
    static func makeID() -> String {
        var random = SystemRandomNumberGenerator()
        let value: UInt64 = random.next()
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
