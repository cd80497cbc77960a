import Logging
import PushCore

/// Commands on a Redis Cluster (SPEC §9), on the loop: one pipelined ``RedisClient`` per master, each command sent
/// to the master of the slot it names; `MOVED` updates the slot map, sends the command again to the new master and
/// refreshes the whole map (`CLUSTER SLOTS`); `ASK` sends that one command to the node named after `ASKING`;
/// `TRYAGAIN` and `CLUSTERDOWN` send it again after a pause with jitter. The map is read from the first seed (or
/// known master) that answers, again every 30 s and whenever a master's connection goes down (a failover moves its
/// slots to a replica).
///
/// Like `RedisClient`, a command's completion runs once, on the loop, never inside `send`.
public final class RedisClusterClient {
    public typealias Completion = RedisClient.Completion

    public let seeds: [ClusterNode]
    /// Which master serves each slot, as last read (and corrected by `MOVED` since).
    public private(set) var map = ClusterSlotMap()
    /// Runs when a master's connection is (again) ready: the place to load scripts on it.
    public var onMasterReady: ((ClusterNode, RedisClient) -> Void)?
    /// Redirections followed and retries made, since the start (for metrics).
    public private(set) var movedFollowed = 0
    public private(set) var askFollowed = 0
    public private(set) var retries = 0
    /// Runs after each refresh of the slot map.
    public var onMapChanged: (() -> Void)?

    /// Redirections and retries of one command at most, before its last answer is passed on as it is.
    public static let maxAttempts = 5
    /// How often the slot map is read again when nothing asked for it.
    public static let refreshInterval = 30.0

    private let loop: EventLoop
    private let logger: Logger
    private let commandTimeout: Double
    private var clients: [ClusterNode: RedisClient] = [:]
    /// Commands waiting for a node's connection, failed if it is not ready within the command timeout.
    private var waiting: [ClusterNode: [(Result<RedisClient, RedisError>) -> Void]] = [:]
    private var refreshing = false
    private var refreshTimer: LoopTimer?
    private let delays: LoopDelays

    public init(loop: EventLoop, seeds: [ClusterNode], logger: Logger, commandTimeout: Double = 2.0) {
        precondition(!seeds.isEmpty, "RedisClusterClient: no seeds")
        self.loop = loop
        delays = LoopDelays(loop: loop)
        self.seeds = seeds
        self.logger = logger
        self.commandTimeout = commandTimeout
    }

    /// Reads the slot map and connects to every master (in the background: this returns at once).
    public func start() {
        refresh()
        let timer = LoopTimer(loop: loop) { [unowned self] in self.refresh() }
        timer.start(after: Self.refreshInterval, repeat: Self.refreshInterval)
        refreshTimer = timer
    }

    public func stop() {
        refreshTimer?.stop()
        delays.cancelAll()
        for client in clients.values { client.stop() }
    }

    /// Every slot has a master, and every master's connection is ready.
    public var isReady: Bool {
        map.unservedSlots == 0 && map.masters.allSatisfy { clients[$0]?.isReady == true }
    }

    /// Whether a slot map was read: commands can be sent (those for an unreachable master fail on their own).
    public var hasMap: Bool { !map.masters.isEmpty }

    /// The connections to the masters of the current map (figures for metrics).
    public var masterConnections: [RedisClient] { map.masters.compactMap { clients[$0] } }

    /// Writes what every connection has queued now, without waiting for the loop to sleep
    /// (``RedisClient/writeNow()``).
    public func writeNow() {
        for client in clients.values where client.isReady { client.writeNow() }
    }

    /// Sends `args` to the master of `slot` (``RedisSlot/of(key:)`` of a key it names).
    public func send(_ args: [[UInt8]], slot: UInt16, _ completion: @escaping Completion) {
        send(args, slot: slot, attempt: 1, completion)
    }

    private func send(_ args: [[UInt8]], slot: UInt16, attempt: Int, _ completion: @escaping Completion) {
        guard let node = map.master(of: slot) else {
            // No map yet, or the slot is not served (the cluster is down or being changed): read it again.
            refresh()
            guard attempt < Self.maxAttempts else { return after(0) { completion(.failure(.notConnected)) } }
            return after(backoff(attempt)) { [unowned self] in self.send(args, slot: slot, attempt: attempt + 1, completion) }
        }
        whenConnected(node) { [unowned self] connected in
            switch connected {
            case .failure(let error):
                // The master is unreachable: a replica may have taken its slots over since (a failover), which
                // only a fresh map says; this command fails (the caller answers 503), later ones go there.
                self.refresh()
                completion(.failure(error))
            case .success(let client):
                client.send(args) { result in
                    self.answered(result, node: node, args: args, slot: slot, attempt: attempt, completion)
                }
            }
        }
    }

    private func answered(
        _ result: Result<RedisValue, RedisError>, node: ClusterNode, args: [[UInt8]], slot: UInt16, attempt: Int,
        _ completion: @escaping Completion
    ) {
        guard case .success(.error(let text)) = result, attempt < Self.maxAttempts,
            let redirect = ClusterRedirect(error: text, askedHost: node.host)
        else { return completion(result) }
        switch redirect {
        case .moved(let movedSlot, let owner):
            logger.debug("MOVED", metadata: ["slot": "\(movedSlot)", "to": "\(owner)"])
            movedFollowed += 1
            map.move(slot: movedSlot, to: owner)
            refresh()
            send(args, slot: slot, attempt: attempt + 1, completion)
        case .ask(_, let target):
            askFollowed += 1
            whenConnected(target) { connected in
                switch connected {
                case .failure(let error):
                    completion(.failure(error))
                case .success(let client):
                    // Pipelined on one connection: ASKING applies to the command right after it.
                    client.send([Array("ASKING".utf8)]) { _ in }
                    client.send(args, completion)
                }
            }
        case .retry:
            retries += 1
            after(backoff(attempt)) { [unowned self] in self.send(args, slot: slot, attempt: attempt + 1, completion) }
        }
    }

    /// 50 ms, 100 ms, 200 ms… with ±50 % jitter, so that many clients retrying do not come back together.
    private func backoff(_ attempt: Int) -> Double {
        0.05 * Double(1 << min(attempt - 1, 6)) * Double.random(in: 0.5...1.5)
    }

    // MARK: - Connections

    /// The connection to `node`, made and started on first use.
    func client(for node: ClusterNode) -> RedisClient {
        if let client = clients[node] { return client }
        let client = RedisClient(
            loop: loop, url: RedisURL(host: node.host, port: node.port), name: "cluster \(node)", logger: logger,
            commandTimeout: commandTimeout)
        client.onReady = { [unowned self, unowned client] in
            if self.map.masters.contains(node) { self.onMasterReady?(node, client) }
            for waiter in self.waiting.removeValue(forKey: node) ?? [] { waiter(.success(client)) }
        }
        client.onDown = { [unowned self] in
            for waiter in self.waiting.removeValue(forKey: node) ?? [] { waiter(.failure(.notConnected)) }
            self.refresh()
        }
        clients[node] = client
        client.start()
        return client
    }

    /// Calls `then` with `node`'s connection once it is ready (at once if it is), or with a failure if it is not
    /// ready within the command timeout.
    private func whenConnected(_ node: ClusterNode, _ then: @escaping (Result<RedisClient, RedisError>) -> Void) {
        let client = client(for: node)
        if client.isReady { return then(.success(client)) }
        let first = waiting[node, default: []].isEmpty
        waiting[node, default: []].append(then)
        guard first else { return }
        after(commandTimeout) { [unowned self] in
            for waiter in self.waiting.removeValue(forKey: node) ?? [] { waiter(.failure(.notConnected)) }
        }
    }

    // MARK: - The slot map

    /// Reads `CLUSTER SLOTS` from the first known master or seed that answers (one refresh at a time).
    public func refresh() {
        guard !refreshing else { return }
        refreshing = true
        var candidates = map.masters
        for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
        // Connected ones first: no connect needed.
        candidates.sort { (clients[$0]?.isReady == true ? 0 : 1) < (clients[$1]?.isReady == true ? 0 : 1) }
        ask(candidates, 0)
    }

    private func ask(_ candidates: [ClusterNode], _ index: Int) {
        guard index < candidates.count else {
            refreshing = false
            logger.warning("no cluster node answered CLUSTER SLOTS", metadata: ["tried": "\(candidates)"])
            return after(1) { [unowned self] in self.refresh() }
        }
        let node = candidates[index]
        whenConnected(node) { [unowned self] connected in
            guard case .success(let client) = connected else { return self.ask(candidates, index + 1) }
            client.send([Array("CLUSTER".utf8), Array("SLOTS".utf8)]) { result in
                guard case .success(let reply) = result,
                    let map = try? ClusterSlotMap(slotsReply: reply, askedHost: node.host), !map.masters.isEmpty
                else { return self.ask(candidates, index + 1) }
                self.refreshing = false
                self.apply(map)
            }
        }
    }

    private func apply(_ newMap: ClusterSlotMap) {
        let before = Set(map.masters)
        map = newMap
        for master in map.masters {
            let client = client(for: master)
            // Promoted (a replica after a failover), already connected: its scripts are not loaded yet.
            if !before.contains(master) && client.isReady { onMasterReady?(master, client) }
        }
        onMapChanged?()
    }

    /// Runs `action` on the loop after `seconds`.
    private func after(_ seconds: Double, _ action: @escaping () -> Void) { delays.after(seconds, action) }
}
