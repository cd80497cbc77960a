import CLibev
import Glibc
import Logging
import PushCore

/// The connection server of one worker (SPEC §1): accepts client sockets, runs the handshake and heartbeats,
/// keeps the local user → connections index, and delivers frames to local connections: transient ones as
/// they come, stored ones in seq order per connection with gaps filled from Redis.
final class ConnectionServer {
    let loop: EventLoop
    let config: GatewayConfiguration
    let logger: Logger
    let stats: WorkerStats
    let store: MessageStore

    let maxFrame: Int
    let maxWriteQueue: Int
    let handshakeTicks: UInt32
    let idleTicks: UInt32
    private let heartbeatSeconds: Int
    /// Seconds a session hash lives in Redis without a refresh; refreshed at heartbeats once half is gone.
    let sessionTTL: Int
    private let sessionRefreshTicks: UInt32
    /// Verifies AUTH tokens when `auth.required`; nil in open mode (goim's behaviour: `mid` is trusted).
    private let tokens: TokenSigner?

    /// Authenticated connections by user.
    private(set) var users = UserIndex<ClientConnection>()
    /// Authenticated connections per goim room, for HEARTBEAT_REPLY counts and room pushes.
    private(set) var rooms = GroupIndex<ClientConnection>()
    /// Connections per topic; the node listens on a topic's channel while it has a member here.
    private(set) var topics = GroupIndex<ClientConnection>()
    /// Each local room's member count across every node, refreshed every few seconds (goim's HEARTBEAT_REPLY
    /// carries the room's whole online count); a room not in it yet counts its local members.
    var roomCountsAcrossNodes: [String: Int] = [:]
    /// Authenticated connections by device key, for goim's pushes by key (goim keys are unique across users).
    private(set) var byKey: [String: ClientConnection] = [:]
    /// Local users known to hold a session on another node too (from the AUTH script's answer, or told by the
    /// other node's): their transient pushes go through Redis. Every other user with local connections and no
    /// AUTH in flight has sessions here only, and a transient push to it needs no round trip.
    private var remoteUsers: Set<String> = []
    /// Frames to this worker's connections: transient, stored in seq order, goim room batches.
    private(set) var delivery: LocalDelivery!
    /// Frames a connection pipelined behind its AUTH while Redis answers it (a side table: few connections
    /// ever have any, and a field would cost every connection 8 bytes).
    private var deferred: [ObjectIdentifier: [Frame]] = [:]
    /// Topics each connection joined with SUB (a side table, like `deferred`).
    private var topicsOf: [ObjectIdentifier: [String]] = [:]
    /// Connections accepted and not yet closed, authenticated or not.
    private(set) var connectionCount = 0
    /// Frames a client may pipeline behind its AUTH while Redis answers it.
    static let maxDeferred = 32

    init(loop: EventLoop, config: GatewayConfiguration, store: MessageStore, stats: WorkerStats, logger: Logger) {
        self.loop = loop
        self.config = config
        self.store = store
        self.stats = stats
        self.logger = logger
        maxFrame = config.limits.maxFrame
        maxWriteQueue = config.limits.maxWriteQueue
        handshakeTicks = EventLoop.ticks(config.limits.handshakeTimeout)
        idleTicks = EventLoop.ticks(config.limits.idleTimeout)
        heartbeatSeconds = Int(config.limits.heartbeat.rounded(.up))
        sessionTTL = Int((config.limits.idleTimeout * 2).rounded(.up)) + 60
        sessionRefreshTicks = EventLoop.ticks(Double(sessionTTL) / 2)
        tokens = config.auth.required ? config.auth.secret.map { TokenSigner(authenticator: OpenSSLHMAC(secret: $0)) } : nil
        delivery = LocalDelivery(hub: self, store: store, stats: stats, inboxMax: config.inbox.max)
    }

    /// Takes a freshly accepted client socket from the TCP listener.
    func accept(_ fd: Int32) {
        adopt(fd, ClientConnection(fd: fd, server: self))
    }

    /// Takes a freshly accepted client socket from the WebSocket listener.
    func acceptWebSocket(_ fd: Int32) {
        adopt(fd, WebSocketConnection(fd: fd, server: self))
    }

    private func adopt(_ fd: Int32, _ connection: ClientConnection) {
        guard loop.adopt(fd, connection) else { return }
        connectionCount += 1
        stats.accepted += 1
    }

    // MARK: - Frames from clients

    func handle(_ frame: Frame, from connection: ClientConnection) {
        stats.framesIn += 1
        if connection.awaitingAuth {
            let id = ObjectIdentifier(connection)
            guard deferred[id, default: []].count < Self.maxDeferred else {
                connection.fail(.badAuth("too many frames before AUTH_REPLY"), operation: frame.operation, sequence: frame.sequence)
                return
            }
            deferred[id, default: []].append(frame)
            return
        }
        switch connection.session.receive(frame) {
        case .none:
            break
        case .reply(let reply):
            connection.send(reply)
        case .authenticate(let request, let sequence):
            authenticate(connection, request, sequence: sequence)
        case .heartbeat(let sequence):
            var body: [UInt8] = []
            let count = connection.session.room.map { max(rooms.count($0), roomCountsAcrossNodes[$0] ?? 0) } ?? 0
            body.appendBigEndian(UInt32(clamping: count))
            connection.send(Frame(.heartbeatReply, sequence: sequence, body: body))
            refreshSession(connection)
        case .roomChanged(let from, let to, let reply):
            if let from { rooms.leave(connection, from) }
            if let to { rooms.join(connection, to) }
            connection.send(reply)
        case .forward(let frame):
            forward(frame, from: connection)
        case .fail(let error, let operation, let sequence):
            logger.debug(
                "protocol error", metadata: ["fd": "\(connection.fd)", "code": "\(error.code)", "op": "\(operation)"])
            connection.fail(error, operation: operation, sequence: sequence)
        }
    }

    // MARK: - AUTH

    private func authenticate(_ connection: ClientConnection, _ request: AuthRequest, sequence: UInt32) {
        var tokenDevice: String?
        if let tokens {
            do {
                let claims = try tokens.verify(
                    request.token ?? "", user: request.user, device: request.key, now: UInt64(time(nil)))
                tokenDevice = claims.device
            } catch {
                logger.debug("token refused", metadata: ["fd": "\(connection.fd)", "uid": "\(request.user)", "code": "\(error.code)"])
                connection.fail(.authFailed("\(error.code): \(error.message)"), operation: .auth, sequence: sequence)
                return
            }
        }
        let key = request.key ?? tokenDevice ?? Self.makeDeviceKey()
        connection.session.online(request, key: key)
        users.add(connection, user: request.user)
        byKey[key] = connection
        if let room = request.room { rooms.join(connection, room) }
        connection.awaitingAuth = true

        // One round trip: register the session, read the counters, and fetch what the device missed.
        let call = SessionCall(
            uid: request.user, device: key, node: store.node, platform: request.platform,
            nowSeconds: UInt64(time(nil)), ttl: sessionTTL, lastSeq: request.lastSeq, limit: config.inbox.max)
        // Connections are captured strongly (until the reply, at most the Redis timeout): a weak reference would
        // give every connection object a side table for the rest of its life (memory, and slower retains).
        store.runSessionScript(call) { [weak self] result in
            guard let self else { return }
            // Unknown (Redis did not answer) counts as remote: routing through Redis is never wrong.
            if (try? result.get())?.remote ?? true, self.users.count(of: request.user) > 0 {
                self.remoteUsers.insert(request.user)
            }
            guard connection.isOpen else { return }
            connection.awaitingAuth = false
            switch result {
            case .success(let session):
                self.online(connection, request, key: key, session: session, sequence: sequence)
            case .failure(let error):
                self.logger.warning("AUTH could not reach storage", metadata: ["uid": "\(request.user)", "error": "\(error)"])
                connection.disconnect(
                    reason: "storage_unavailable", reconnect: true, afterMillis: Int.random(in: 1000...5000),
                    closeReason: .protocolError)
            }
        }
    }

    private func online(
        _ connection: ClientConnection, _ request: AuthRequest, key: String, session: SessionResult, sequence: UInt32
    ) {
        stats.authenticated += 1
        connection.sessionRefreshedAt = loop.now
        var reply = JSONWriter()
        reply.object {
            $0.field("code", 0)
            $0.field("key", key)
            $0.field("heartbeat", heartbeatSeconds)
            $0.field("unread", session.unread)
            $0.field("last_seq", session.seq)
        }
        connection.send(Frame(.authReply, sequence: sequence, body: reply.bytes))

        // Replay from the device's last_seq (what Redis still keeps), then whatever arrived meanwhile, in order.
        // A device that gave no last_seq starts with the next message.
        var start = session.seq
        if request.lastSeq != nil, let first = session.messages.first { start = first.seq - 1 }
        delivery.resume(connection, with: session.messages, after: start)
        logger.debug("authenticated", metadata: ["fd": "\(connection.fd)", "uid": "\(request.user)", "key": "\(key)"])

        let frames = deferred.removeValue(forKey: ObjectIdentifier(connection)) ?? []
        for frame in frames where connection.isOpen { handle(frame, from: connection) }
    }

    /// Whether every session of `user` is known to be on this node: it has connections here, none waiting for
    /// AUTH's answer, and no other node has told of a session of its own. Then a transient push to the user is
    /// delivered here without asking Redis where else it is.
    func sessionsOnlyHere(_ user: String) -> Bool {
        guard !remoteUsers.contains(user) else { return false }
        var connected = false
        var authenticating = false
        users.forEach(of: user) { connection in
            connected = true
            if connection.awaitingAuth { authenticating = true }
        }
        return connected && !authenticating
    }

    /// Pushes the session hash's expiry forward once half of it is gone (at most once per connection per
    /// half-TTL, piggybacking on heartbeats).
    private func refreshSession(_ connection: ClientConnection) {
        let now = loop.now
        guard now &- connection.sessionRefreshedAt >= sessionRefreshTicks else { return }
        connection.sessionRefreshedAt = now
        store.command(["EXPIRE", RedisKeys.sessions(connection.session.user), String(sessionTTL)])
    }

    /// A device key for a client that gave none: 15 random base32 characters, short enough to be stored
    /// inline in a Swift string.
    static func makeDeviceKey() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        var random = SystemRandomNumberGenerator()
        return String(decoding: (0..<15).map { _ in alphabet[Int(random.next() & 31)] }, as: UTF8.self)
    }

    // MARK: - ACK, SYNC, READ

    private func forward(_ frame: Frame, from connection: ClientConnection) {
        let user = connection.session.user
        switch frame.operation {
        case .ack:
            guard let seq = Self.seqField(frame.body, "seq") else {
                return connection.fail(.badBody(frame.operation, "expected {\"seq\":N}"), operation: frame.operation, sequence: frame.sequence)
            }
            store.run(AckCall(uid: user, device: connection.session.key, seq: seq)) { [logger] result in
                if case .failure(let error) = result { logger.debug("ACK not stored", metadata: ["uid": "\(user)", "error": "\(error)"]) }
            }
        case .sync:
            guard let after = Self.seqField(frame.body, "after") else {
                return connection.fail(.badBody(frame.operation, "expected {\"after\":N,\"limit\":L}"), operation: frame.operation, sequence: frame.sequence)
            }
            let limit = Self.seqField(frame.body, "limit").map { Int(clamping: max(1, $0)) } ?? 100
            let call = SyncCall(uid: user, after: after, limit: min(limit, config.inbox.max), nowSeconds: UInt64(time(nil)))
            store.run(call) { result in
                guard connection.isOpen else { return }
                switch result {
                case .success(let sync):
                    var batch: [UInt8] = []
                    for message in sync.messages { Frame.encode(message, into: &batch) }
                    connection.send(Frame(.syncReply, sequence: frame.sequence, body: batch))
                case .failure(let error):
                    connection.fail(.unavailable(frame.operation, "storage: \(error)"), operation: frame.operation, sequence: frame.sequence)
                }
            }
        case .read:
            guard let seq = Self.seqField(frame.body, "seq") else {
                return connection.fail(.badBody(frame.operation, "expected {\"seq\":N}"), operation: frame.operation, sequence: frame.sequence)
            }
            store.run(ReadCall(uid: user, seq: seq)) { result in
                guard connection.isOpen else { return }
                switch result {
                case .success(let read):
                    var body = JSONWriter()
                    body.object { $0.field("unread", read.unread) }
                    connection.send(Frame(.readReply, sequence: frame.sequence, body: body.bytes))
                case .failure(let error):
                    connection.fail(.unavailable(frame.operation, "storage: \(error)"), operation: frame.operation, sequence: frame.sequence)
                }
            }
        case .sub, .unsub:
            guard let json = try? JSONParser.parse(frame.body), let list = json["topics"]?.arrayValue,
                case let names = list.compactMap(\.stringValue), names.count == list.count,
                names.allSatisfy(AuthRequest.isValidIdentifier)
            else {
                return connection.fail(
                    .badBody(frame.operation, "expected {\"topics\":[\"name\",…]}"), operation: frame.operation,
                    sequence: frame.sequence)
            }
            let changed = frame.operation == .sub ? join(connection, topics: names) : leave(connection, topics: names)
            guard let changed else {
                return connection.fail(
                    .badBody(frame.operation, "at most \(Self.maxTopics) topics per connection"),
                    operation: frame.operation, sequence: frame.sequence)
            }
            var body = JSONWriter()
            body.object {
                $0.key("topics")
                $0.array { writer in changed.forEach { writer.value($0) } }
            }
            connection.send(Frame(frame.operation == .sub ? .subReply : .unsubReply, sequence: frame.sequence, body: body.bytes))
        default:
            connection.fail(.unknownOperation(frame.operation), operation: frame.operation, sequence: frame.sequence)
        }
    }

    /// Most topics one connection may join.
    static let maxTopics = 64

    /// Joins `names`; returns the connection's topics among them (nil when past `maxTopics`).
    private func join(_ connection: ClientConnection, topics names: [String]) -> [String]? {
        let id = ObjectIdentifier(connection)
        let joined = topicsOf[id] ?? []
        let new = Array(Set(names).subtracting(joined)).sorted()
        guard joined.count + new.count <= Self.maxTopics else { return nil }
        for topic in new where topics.join(connection, topic) { store.subscribe(topic: topic) }
        let now = joined + new
        if !now.isEmpty { topicsOf[id] = now }
        return names.filter { now.contains($0) }
    }

    /// Leaves `names`; returns those that were left.
    private func leave(_ connection: ClientConnection, topics names: [String]) -> [String]? {
        let id = ObjectIdentifier(connection)
        let joined = topicsOf[id] ?? []
        let left = names.filter { joined.contains($0) }
        for topic in Set(left) where topics.leave(connection, topic) { store.unsubscribe(topic: topic) }
        let remaining = joined.filter { !left.contains($0) }
        topicsOf[id] = remaining.isEmpty ? nil : remaining
        return left
    }

    /// The topics `connection` joined with SUB.
    func topics(of connection: ClientConnection) -> [String] { topicsOf[ObjectIdentifier(connection)] ?? [] }

    /// A non-negative integer member of a JSON object body.
    private static func seqField(_ body: [UInt8], _ name: String) -> UInt64? {
        guard let json = try? JSONParser.parse(body), let value = json[name]?.int64Value, value >= 0 else { return nil }
        return UInt64(value)
    }

    // MARK: - Closes

    /// Takes a connection that starts closing out of every index, so it no longer counts as online nor gets
    /// pushes, and ends its session in Redis.
    func retire(_ connection: ClientConnection) {
        delivery.forget(connection)
        deferred[ObjectIdentifier(connection)] = nil
        let user = connection.session.user
        guard !user.isEmpty else { return }
        users.remove(connection, user: user)
        if users.count(of: user) == 0 { remoteUsers.remove(user) }
        if byKey[connection.session.key] === connection { byKey[connection.session.key] = nil }
        if let room = connection.session.room { rooms.leave(connection, room) }
        _ = leave(connection, topics: topics(of: connection))
        // Sent after the AUTH's session script on the same connection, so it never overtakes it.
        store.runSessionScript(LeaveCall(uid: user, device: connection.session.key, node: store.node)) { _ in }
    }

    func connectionClosed(_ connection: ClientConnection, reason: CloseReason) {
        connectionCount -= 1
        stats.closed(reason)
        logger.debug(
            "connection closed",
            metadata: ["fd": "\(connection.fd)", "uid": "\(connection.session.user)", "reason": "\(reason.rawValue)"])
    }

    /// Sends DISCONNECT to the connections of `user` on device `key` here and closes them; returns how many.
    func kick(user: String, key: String) -> Int {
        var kicked = 0
        for connection in users.connections(of: user) where connection.session.key == key && connection.isOpen {
            connection.disconnect(reason: "kicked", reconnect: false, afterMillis: 0, closeReason: .kicked)
            kicked += 1
        }
        return kicked
    }

    /// Drains this worker (SIGTERM, reload): every authenticated client gets DISCONNECT with `reconnect: true`
    /// and a random `after_ms` within `seconds`, sent in equal slices each tick over `seconds`, so that
    /// reconnects do not arrive as one storm; `done` runs when all are gone or the time is up.
    func drain(over seconds: Double, done: @escaping () -> Void) {
        var pending: [ClientConnection] = []
        users.forEachConnection { pending.append($0) }
        pending.shuffle()
        let ticks = max(1, Int(EventLoop.ticks(seconds)))
        let perTick = max(1, (pending.count + ticks - 1) / ticks)
        let deadline = loop.now &+ EventLoop.ticks(seconds + Double(SocketConnection.lingerTicks) * EventLoop.tickSeconds)
        let afterLimit = max(1, Int(seconds * 1000))
        logger.info("draining clients", metadata: ["count": "\(pending.count)", "seconds": "\(seconds)"])
        var finished = false
        loop.addTick { [unowned self] in
            guard !finished else { return }
            if pending.isEmpty {
                // Connections that were still in their handshake when the drain began (or were accepted as the
                // listeners closed) and have authenticated since.
                users.forEachConnection { if $0.isOpen && $0.session.state != .closing { pending.append($0) } }
            }
            for connection in pending.suffix(perTick) where connection.isOpen {
                connection.disconnect(
                    reason: "shutdown", reconnect: true, afterMillis: Int.random(in: 0...afterLimit), closeReason: .shutdown)
            }
            pending.removeLast(min(perTick, pending.count))
            if (pending.isEmpty && connectionCount == 0) || loop.now >= deadline {
                finished = true
                done()
            }
        }
    }

    // MARK: - Where users' sessions are

    /// Another node told of a session of `user`: its transient pushes go through Redis from now on (a user with no
    /// connection here any more learns anew at its next AUTH here).
    func noteSessionElsewhere(_ user: String) {
        if users.count(of: user) > 0 { remoteUsers.insert(user) }
    }

    /// Every user connected now may hold sessions elsewhere (a presence note may have been lost).
    func noteAllSessionsElsewhere() {
        remoteUsers.formUnion(users.users)
    }
}
