import Glibc
import Logging
import PushCore
import PushPosix

/// The connection hub of one worker (SPEC §1): accepts client sockets, keeps the indexes of its connections (by
/// user, device key, room and topic), hands each client frame to its operation (`Operations/`, one file per
/// group), and retires, kicks and drains connections. Frames to clients go out through `delivery`.
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
    let heartbeatSeconds: Int
    /// Seconds a session hash lives in Redis without a refresh; refreshed at heartbeats once half is gone.
    let sessionTTL: Int
    let sessionRefreshTicks: UInt32
    /// Verifies AUTH tokens when `auth.required`; nil in open mode (goim's behaviour: `mid` is trusted).
    let tokens: TokenSigner?

    /// Authenticated connections by user.
    var users = UserIndex<ClientConnection>()
    /// Authenticated connections per goim room, for HEARTBEAT_REPLY counts and room pushes.
    var rooms = GroupIndex<ClientConnection>()
    /// Connections per topic; the node listens on a topic's channel while it has a member here.
    var topics = GroupIndex<ClientConnection>()
    /// Each local room's member count across every node, refreshed every few seconds (goim's HEARTBEAT_REPLY
    /// carries the room's whole online count); a room not in it yet counts its local members.
    var roomCountsAcrossNodes: [String: Int] = [:]
    /// Authenticated connections by device key, for goim's pushes by key (goim keys are unique across users).
    var byKey: [String: ClientConnection] = [:]
    /// Local users known to hold a session on another node too (from the AUTH script's answer, or told by the
    /// other node's): their transient pushes go through Redis. Every other user with local connections and no
    /// AUTH in flight has sessions here only, and a transient push to it needs no round trip.
    private var remoteUsers: Set<String> = []
    /// Frames to this worker's connections: transient, stored in seq order, goim room batches.
    private(set) var delivery: LocalDelivery!
    /// Frames a connection pipelined behind its AUTH while Redis answers it (a side table: few connections
    /// ever have any, and a field would cost every connection 8 bytes).
    var held: [ObjectIdentifier: [Frame]] = [:]
    /// Topics each connection joined with SUB (a side table, like `held`).
    var topicsOf: [ObjectIdentifier: [String]] = [:]
    /// The bans in force on this node (SPEC §8), kept up to date by the worker's `EdgeState`
    /// (`ConnectionServer+Bans.swift`).
    var bans = BanList()
    /// Connections accepted and not yet closed, authenticated or not (`connectionClosed` counts them down).
    var connectionCount = 0
    /// `server.proxy_protocol`: each client socket reads its PROXY header first (`ConnectionServer+Accept.swift`).
    let proxyProtocol: Bool
    /// The limits on clients (SPEC §8), this worker's share of the instance's: new connections and open
    /// connections per address (at accept), frames per connection, failures per address for automatic bans
    /// (`ConnectionServer+Limits.swift`).
    var connectLimiter: KeyedLimiter<IPAddress>
    var openPerAddress: KeyedCounter<IPAddress>
    var frameLimiter: FrameRateLimiter<UInt32>
    var autoBan: AutoBan
    /// Stores an automatic ban for every node: the worker's `EdgeState.addBan`.
    var onAutoBan: ((BanRequest) -> Void)?
    /// Frames a client may pipeline behind its AUTH while Redis answers it.
    static let maxHeld = 32

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
        let limits = config.limits
        let workers = config.server.workers
        proxyProtocol = config.server.proxyProtocol
        connectLimiter = KeyedLimiter(RateLimit.share(of: (limits.connectRate, limits.connectBurst), workers: workers))
        openPerAddress = KeyedCounter(
            maximum: KeyedCounter<IPAddress>.share(of: limits.maxConnsPerIP, workers: workers))
        frameLimiter = FrameRateLimiter(limits.clientLimit)
        autoBan = AutoBan(errors: limits.autobanErrors, window: limits.autobanWindow, ttl: limits.autobanTTL)
        delivery = LocalDelivery(hub: self, store: store, stats: stats, inboxMax: config.inbox.max)
        startSweepingFrameBudgets()
    }

    // MARK: - Frames from clients

    /// One frame from a client, to the operation its session says it is (frames held behind AUTH come here again
    /// once it is answered; `receive` counted them when they arrived).
    func handle(_ frame: Frame, from connection: ClientConnection) {
        switch connection.session.receive(frame) {
        case .none: break
        case .reply(let reply): connection.send(reply)
        case .authenticate(let request, let sequence): authenticate(connection, request, sequence: sequence)
        case .hold(let frame): hold(frame, from: connection)
        case .heartbeat(let sequence): heartbeat(connection, sequence: sequence)
        case .roomChanged(let from, let to, let reply): changeRoom(connection, from: from, to: to, reply: reply)
        case .ack(let seq): ack(connection, seq: seq)
        case .sync(let after, let limit, let sequence): sync(connection, after: after, limit: limit, sequence: sequence)
        case .read(let seq, let sequence): read(connection, seq: seq, sequence: sequence)
        case .join(let topics, let sequence): subscribe(connection, topics, sequence: sequence)
        case .leave(let topics, let sequence): unsubscribe(connection, topics, sequence: sequence)
        case .fail(let error, let operation, let sequence):
            if error.isFatal {
                connection.close(.protocolError(error, operation: operation, sequence: sequence))
            } else {
                logger.debug(
                    "protocol error", metadata: ["fd": "\(connection.fd)", "code": "\(error.code)", "op": "\(operation)"])
                connection.send(error.frame(op: operation, sequence: sequence))
            }
        }
    }

    // MARK: - Where users' sessions are

    /// Whether every session of `user` is known to be on this node: it has connections here, none waiting for
    /// AUTH's answer, and no other node has told of a session of its own. Then a transient push to the user is
    /// delivered here without asking Redis where else it is.
    func sessionsOnlyHere(_ user: String) -> Bool {
        guard !remoteUsers.contains(user) else { return false }
        var connected = false
        var authenticating = false
        users.forEach(of: user) { connection in
            connected = true
            if connection.session.isAuthenticating { authenticating = true }
        }
        return connected && !authenticating
    }

    /// Another node told of a session of `user`: its transient pushes go through Redis from now on (a user with no
    /// connection here any more learns anew at its next AUTH here).
    func noteSessionElsewhere(_ user: String) {
        if users.count(of: user) > 0 { remoteUsers.insert(user) }
    }

    /// Every user connected now may hold sessions elsewhere (a presence note may have been lost).
    func noteAllSessionsElsewhere() {
        remoteUsers.formUnion(users.users)
    }

    // MARK: - Closes

    /// Takes a connection that starts closing out of every index, so it no longer counts as online nor gets
    /// pushes, and ends its session in Redis.
    func retire(_ connection: ClientConnection) {
        delivery.forget(connection)
        held[ObjectIdentifier(connection)] = nil
        let user = connection.session.user
        guard !user.isEmpty else { return }
        users.remove(connection, user: user)
        if users.count(of: user) == 0 { remoteUsers.remove(user) }
        if byKey[connection.session.key] === connection { byKey[connection.session.key] = nil }
        if let room = connection.session.room { rooms.leave(connection, room) }
        leaveAllTopics(connection)
        // Sent after the AUTH's session script on the same connection, so it never overtakes it.
        let leave = LeaveCall(
            uid: user, device: connection.session.key, node: store.node, presenceStream: presenceStream(user))
        store.runSessionScript(leave) { _ in }
    }

    /// The stream a user's first and last sessions are told to, with `presence.events` (SPEC §10).
    func presenceStream(_ user: String) -> String? {
        guard config.presence.events else { return nil }
        return RedisKeys.presenceStream(forUser: user, cluster: !config.redis.cluster.isEmpty)
    }

    /// A connection starts closing: counted and logged here, once, whatever happens while it lingers; a close the
    /// client is to blame for counts towards an automatic ban of its address.
    func closing(_ connection: ClientConnection, _ reason: CloseReason, _ farewell: CloseReason.Farewell) {
        stats.closed(reason.kind)
        logger.debug(
            "connection closed",
            metadata: [
                "fd": "\(connection.fd)", "uid": "\(connection.session.user)", "reason": "\(reason.kind.rawValue)",
                "detail": "\(farewell.detail)", "addr": "\(connection.address)",
            ])
        if reason.blamesClient { countFailure(from: connection.address) }
    }

    /// A connection's descriptor was closed: its address has one connection less open.
    func connectionClosed(_ connection: ClientConnection) {
        connectionCount -= 1
        openPerAddress.decrement(connection.address)
    }

    /// Sends DISCONNECT to the connections of `user` on device `key` here and closes them; returns how many.
    func kick(user: String, key: String) -> Int {
        var kicked = 0
        for connection in users.connections(of: user) where connection.session.key == key && connection.isOpen {
            connection.close(.kicked)
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
        let afterLimit = UInt32(clamping: max(1, Int(seconds * 1000)))
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
                connection.close(.draining(afterMillis: UInt32.random(in: 0...afterLimit)))
            }
            pending.removeLast(min(perTick, pending.count))
            if (pending.isEmpty && connectionCount == 0) || loop.now >= deadline {
                finished = true
                done()
            }
        }
    }
}
