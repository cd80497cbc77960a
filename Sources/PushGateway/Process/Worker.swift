import Glibc
import Logging
import PushCore
import PushPosix

/// One worker: a libev loop with the connection server, the HTTP API and their listeners. The master starts N
/// of them; each is a routing node of its own.
final class Worker {
    let loop: EventLoop
    let config: GatewayConfiguration
    private let logger: Logger
    private let stats = WorkerStats()
    /// The command connection (scripts, plain commands) and the subscription to this node's channels, and
    /// ``MessageStore`` that the servers reach both through.
    private let scripts: ScriptRunner
    private let nodeChannel: NodeChannel
    private let store: MessageStore
    /// Bans and route rules, polled from Redis (SPEC §8).
    private let edge: EdgeState
    private let registry: NodeRegistry
    private let connections: ConnectionServer
    private let http: HTTPServer
    private var listeners: [Listener] = []
    /// The certificate and settings of the TLS listeners; nil when none is on.
    private let tls: TLSContext?
    /// Stopped taking clients: stopping, or drained by an operator (`pushgw ctl drain`).
    private var draining = false
    private var stopping = false
    private var roomCountTimer: LoopTimer!
    private var openTimer: LoopTimer!
    private var listenersOpen = false
    /// Snapshots to the master, `/metrics`, and the admin commands the master forwards.
    private var control: WorkerControl!

    /// `index`: this worker's slot among the master's; `controlFD`: its end of the control pipe to the master.
    init(config: GatewayConfiguration, logger: Logger, index: Int = 0, controlFD: Int32? = nil) throws {
        self.config = config
        self.logger = logger
        let files = Posix.raiseFileLimit()
        logger.info("file descriptor limit", metadata: ["soft": "\(files.soft)", "hard": "\(files.hard)"])
        loop = try EventLoop(capacity: Int(clamping: files.soft))
        let node = Worker.makeNodeID()
        scripts = ScriptRunner(loop: loop, config: config.redis, logger: logger)
        let subscribeOn = config.redis.cluster.isEmpty
            ? [config.redis.url] : config.redis.cluster.map { RedisURL(host: $0.host, port: $0.port) }
        nodeChannel = NodeChannel(loop: loop, urls: subscribeOn, node: node, logger: logger)
        store = MessageStore(scripts: scripts, channel: nodeChannel, node: node)
        let connections = ConnectionServer(loop: loop, config: config, store: store, stats: stats, logger: logger)
        self.connections = connections
        registry = NodeRegistry(
            loop: loop, scripts: scripts, node: node, address: config.server.tcp?.description ?? "",
            webSocketAddress: config.server.websocket?.description ?? "",
            tlsAddress: config.server.tls?.description ?? "", wssAddress: config.server.wss?.description ?? "",
            group: config.server.group,
            connections: { connections.connectionCount },
            groupCounts: {
                connections.topics.counts.map { (RedisKeys.topicCountField($0.0), $0.1) }
                    + connections.rooms.counts.map { (RedisKeys.roomCountField($0.0), $0.1) }
            })
        let delivery: LocalDelivery = connections.delivery
        let nodes = NodeMessages(hub: connections, delivery: delivery, store: store)
        let pipeline = PushPipeline(
            hub: connections, delivery: delivery, nodes: nodes, store: store, stats: stats, inbox: config.inbox,
            onCluster: !config.redis.cluster.isEmpty)
        let api = PushAPI(
            pipeline: pipeline, connections: connections, store: store, registry: registry, stats: stats, config: config)
        http = HTTPServer(loop: loop, config: config, api: api, stats: stats)
        tls = config.tlsListeners.isEmpty ? nil : try TLSContext(config)
        Self.wire(loop: loop, store: store, delivery: delivery, nodes: nodes, api: api)
        if config.redis.cluster.isEmpty {
            logger.info("node", metadata: ["id": "\(node)", "redis": "\(config.redis.url)"])
        } else {
            logger.info(
                "node, on a Redis Cluster (redis.url is not used)",
                metadata: ["id": "\(node)", "seeds": "\(config.redis.cluster.map(\.description).joined(separator: ","))"])
        }
        edge = EdgeState(loop: loop, scripts: scripts, logger: logger)
        edge.onBans = { [unowned connections] in connections.applyBans($0, added: $1) }
        connections.onAutoBan = { [unowned edge, logger] request in
            edge.addBan(request) { result in
                guard case .failure(let failure) = result else { return }
                logger.warning(
                    "automatic ban not stored",
                    metadata: ["ip": "\(request.ip?.description ?? "-")", "error": "\(failure)"])
            }
        }
        api.edge = edge

        if let address = config.server.tcp {
            try listen("tcp", address) { [connections] in connections.accept($0, peer: $1) }
        }
        if let address = config.server.http {
            try listen("http", address) { [http] fd, _ in http.accept(fd) }
        }
        if let address = config.server.websocket {
            try listen("websocket", address) { [connections] in connections.acceptWebSocket($0, peer: $1) }
        }
        // The same servers over TLS: the connections are the same classes, their sockets speak TLS underneath.
        if let address = config.server.tls, let tls {
            try listen("tls", address) { [connections] in connections.accept($0, peer: $1, tls: tls) }
        }
        if let address = config.server.wss, let tls {
            try listen("wss", address) { [connections] in connections.acceptWebSocket($0, peer: $1, tls: tls) }
        }
        if let address = config.server.https, let tls {
            try listen("https", address) { [http] fd, _ in http.accept(fd, tls: tls) }
        }
        // SIGINT reaches workers too when the master runs in a terminal: the master's SIGTERM drains them.
        roomCountTimer = LoopTimer(loop: loop) { [unowned self] in self.refreshRoomCounts() }
        loop.onSignal(SIGINT) {}
        loop.onSignal(SIGTERM) { [unowned self] in self.stop("SIGTERM") }
        control = WorkerControl(
            WorkerControl.Parts(
                loop: loop, logger: logger, index: index, node: node, stats: stats, connections: connections,
                store: store, registry: registry, http: http,
                drain: { [unowned self] in self.drainClients() }, isDraining: { [unowned self] in self.draining },
                ticketKeys: { [tls] in tls?.setTicketKeys($0) },
                reloadCertificate: { [tls, config, logger] in
                    do {
                        try tls?.reloadCertificate(config)
                        logger.info("TLS certificate reloaded", metadata: ["cert": "\(config.tls.cert ?? "")"])
                    } catch {
                        logger.error("TLS certificate not reloaded: the old one stays", metadata: ["error": "\(error)"])
                    }
                }),
            controlFD: controlFD)
        control.onLost = { [unowned self] in self.stop("control pipe lost") }
        control.edge = edge
    }

    /// The callbacks between the parts of a worker, all in one place, in the order they run.
    private static func wire(
        loop: EventLoop, store: MessageStore, delivery: LocalDelivery, nodes: NodeMessages, api: PushAPI
    ) {
        // goim room messages of one loop iteration go out as one RAW frame per room.
        loop.addBeforeSleep { [unowned delivery] in delivery.flushRoomBatches() }
        store.onNodeMessage = { [unowned nodes] in nodes.received($0) }
        store.whenNodeChannelReady { [unowned nodes] in nodes.channelReady() }
        store.whenReady { [unowned delivery] in delivery.catchUpAll() }
        // Long-polls wait for a stored message of their user to reach this node.
        delivery.onStored = { [unowned api] user in api.waiters.wake(user) }
        // A message published while the node channel was down is lost; one stored while Redis was away from this
        // worker may have been: every parked poll asks again once both connections are back.
        store.whenReady { [unowned api] in api.waiters.recheckAll() }
        store.whenNodeChannelReady { [unowned api, unowned store] in if store.isAvailable { api.waiters.recheckAll() } }
    }

    private func listen(
        _ name: String, _ address: ListenAddress, _ onAccept: @escaping (Int32, IPAddress?) -> Void
    ) throws {
        // Bound now (a taken port fails the start) but accepting only once Redis answers, so a fresh worker never
        // turns clients away with storage_unavailable; connections wait in the backlog meanwhile.
        let listener = try Listener(name: name, address: address, loop: loop, logger: logger, held: true, onAccept: onAccept)
        listeners.append(listener)
        logger.info("listening", metadata: ["listener": "\(name)", "address": "\(address.host):\(listener.port)"])
    }

    /// A node id unique to this worker process: host name, pid and a random suffix (a restarted worker with a
    /// recycled pid is still a new node).
    static func makeNodeID() -> String {
        let host = Posix.hostName().filter { $0 != "|" && $0 != ":" }
        return "\(host.isEmpty ? "node" : host)-\(Posix.pid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    /// Starts accepting: when Redis first answers, or after `openAfter` seconds without it (clients then get
    /// DISCONNECT with a retry time, and transient pushes still work).
    private func openListeners() {
        guard !listenersOpen else { return }
        listenersOpen = true
        openTimer.stop()
        listeners.forEach { $0.open() }
        logger.info("accepting", metadata: ["redis": "\(scripts.isAvailable ? "up" : "down")"])
    }

    /// Longest a fresh worker waits for Redis before it accepts anyway.
    static let openAfter = 5.0

    func run() {
        scripts.whenReady { [unowned self] in self.openListeners() }
        openTimer = LoopTimer(loop: loop) { [unowned self] in self.openListeners() }
        openTimer.start(after: Self.openAfter)
        scripts.start()
        nodeChannel.start()
        registry.start()
        edge.start()
        roomCountTimer.start(after: NodeRegistry.refreshSeconds + 1, repeat: 5)
        control.start()
        logger.info("worker running", metadata: ["pid": "\(Posix.pid())"])
        loop.run()
        logger.info("worker stopped", metadata: ["connections": "\(connections.connectionCount)"])
    }

    /// Refreshes the cross-node member counts of the rooms that have members here.
    private func refreshRoomCounts() {
        let rooms = connections.rooms.counts
        guard !rooms.isEmpty else {
            connections.roomCountsAcrossNodes = [:]
            return
        }
        registry.groupCounts(rooms.map { (RedisKeys.roomCountField($0.0), $0.1) }) { [unowned self] result in
            let totals = (try? result.get()) ?? rooms.map(\.1)
            connections.roomCountsAcrossNodes = Dictionary(zip(rooms.map(\.0), totals), uniquingKeysWith: { first, _ in first })
        }
    }

    /// Stops accepting, drains the clients over `server.drain_timeout`, then exits the loop.
    private func stop(_ signal: String) {
        guard !stopping else { return }
        stopping = true
        draining = true
        logger.info("stopping", metadata: ["signal": "\(signal)"])
        listeners.forEach { $0.close() }
        listeners = []
        http.beginStop()
        connections.drain(over: config.server.drainTimeout) { [unowned self] in
            http.finish { [unowned self] in self.exit() }
        }
    }

    /// Everything is answered and closed: the loop ends.
    private func exit() {
        control.stop()
        registry.stop()
        edge.stop()
        scripts.stop()
        nodeChannel.stop()
        loop.stop()
    }

    /// `pushgw ctl drain`: closes the client listeners and sends the connected clients away (DISCONNECT with
    /// `reconnect: true`, spread over `server.drain_timeout`), while the HTTP API keeps serving. A reload replaces
    /// this worker with one that takes clients again.
    private func drainClients() {
        guard !draining else { return }
        draining = true
        logger.notice("draining clients: client listeners closed, the HTTP API stays")
        let api: Set<String> = ["http", "https"]
        for listener in listeners where !api.contains(listener.name) { listener.close() }
        listeners.removeAll { !api.contains($0.name) }
        connections.drain(over: config.server.drainTimeout) { [logger] in logger.info("clients drained") }
    }
}
