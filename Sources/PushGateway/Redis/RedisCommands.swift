import PushCore
import PushPosix

/// Where storage's commands go: one Redis server (`redis.url`), or, on a Redis Cluster (`redis.cluster`, SPEC §9),
/// the master of the slot of the key each command names. Callers name that key with every command: a script's
/// first key (all its keys share one slot), a plain command's key, a PUBLISH's channel (any node of a cluster
/// forwards a PUBLISH to all the others, and the channel's slot sends every message of one channel through the
/// same node, which keeps them in order).
enum RedisCommands {
    case server(RedisClient)
    case cluster(RedisClusterClient)

    /// Sends `args` for `key` (its slot picks the master on a cluster).
    func send(_ args: [[UInt8]], key: [UInt8], _ completion: @escaping RedisClient.Completion) {
        switch self {
        case .server(let client): client.send(args, completion)
        case .cluster(let cluster): cluster.send(args, slot: RedisSlot.of(key: key), completion)
        }
    }

    func start() {
        switch self {
        case .server(let client): client.start()
        case .cluster(let cluster): cluster.start()
        }
    }

    func stop() {
        switch self {
        case .server(let client): client.stop()
        case .cluster(let cluster): cluster.stop()
        }
    }

    /// Whether commands can be sent now: the server is connected, or the cluster's slot map is known (a command for
    /// a master that cannot be reached then fails on its own, and the other masters' keys work).
    var isAvailable: Bool {
        switch self {
        case .server(let client): client.isReady
        case .cluster(let cluster): cluster.hasMap
        }
    }

    /// Every connection is ready (the server's; each master's).
    var isReady: Bool {
        switch self {
        case .server(let client): client.isReady
        case .cluster(let cluster): cluster.isReady
        }
    }

    /// Writes the queued commands now rather than when the loop sleeps.
    func writeNow() {
        switch self {
        case .server(let client): client.writeNow()
        case .cluster(let cluster): cluster.writeNow()
        }
    }

    /// The command connections: the server's, or one per master of the cluster.
    var connections: [RedisClient] {
        switch self {
        case .server(let client): [client]
        case .cluster(let cluster): cluster.masterConnections
        }
    }

    /// Commands sent, error replies and failures, reconnects: summed over the connections.
    var commandsSent: Int { connections.reduce(0) { $0 + $1.commandsSent } }
    var errors: Int { connections.reduce(0) { $0 + $1.errors + $1.errorReplies } }
    var reconnects: Int { connections.reduce(0) { $0 + $1.reconnects } }

    /// Round-trip times of every connection.
    var latencyHistogram: Histogram {
        var total = Histogram()
        for connection in connections { total.add(connection.latencyHistogram) }
        return total
    }

    /// The `p`th percentile of round-trip times of the slowest connection (on a cluster: the worst master's).
    func latencyPercentile(_ p: Double) -> Double? {
        connections.compactMap { $0.latencyPercentile(p) }.max()
    }
}
