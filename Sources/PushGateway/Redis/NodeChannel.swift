import Logging
import PushCore
import PushPosix

/// This node's subscription connection to Redis: its own channel (`pg:node:<id>`, stored deliveries and routed
/// pushes from other nodes), `pg:all`, and the topics it has members of. A connection of its own, because a
/// subscribed Redis connection takes no other commands.
///
/// On a Redis Cluster it subscribes on one node (a seed): a classic PUBLISH on any node reaches the subscribers of
/// every node. When that node cannot be reached for ``switchAfter`` seconds, it moves to the next seed.
final class NodeChannel {
    private var subscriber: RedisClient
    /// The subscriber given up by the last switch, kept until the next one: its stop may still deliver failures.
    private var retired: RedisClient?
    private let loop: EventLoop
    private let logger: Logger
    private let urls: [RedisURL]
    private var current = 0
    /// Every channel subscribed now: a new subscriber after a switch subscribes them all.
    private var channels: Set<[UInt8]>
    private var watch: LoopTimer?
    private var downSince: Double?

    /// Seconds without a ready subscriber before the next seed is tried (several seeds only).
    static let switchAfter = 2.0

    /// Messages from other nodes: on this node's channel (`pg:node:<id>`), `pg:all`, and the topics subscribed.
    var onNodeMessage: ((NodeMessage) -> Void)?
    private var subscribedHandlers: [() -> Void] = []

    /// `urls`: the Redis server, or the seeds of a cluster (tried in turn).
    init(loop: EventLoop, urls: [RedisURL], node: String, logger: Logger) {
        precondition(!urls.isEmpty, "NodeChannel: no Redis to subscribe on")
        self.loop = loop
        self.logger = logger
        self.urls = urls
        channels = Set([RedisKeys.nodeChannel(node), RedisKeys.broadcastChannel].map { Array($0.utf8) })
        subscriber = RedisClient(loop: loop, url: urls[0], name: "node-channel", logger: logger)
        setUp(subscriber)
    }

    private func setUp(_ client: RedisClient) {
        client.subscribe(channels: Array(channels)) { [unowned self] in self.received($0, $1) }
        client.onSubscribed = { [unowned self] in for handler in self.subscribedHandlers { handler() } }
    }

    /// Runs `handler` each time Redis confirmed the subscriptions (first connect and every reconnect): what was
    /// published while the connection was down is lost, and everything published from now on arrives.
    func whenSubscribed(_ handler: @escaping () -> Void) { subscribedHandlers.append(handler) }

    func start() {
        subscriber.start()
        guard urls.count > 1 else { return }
        let timer = LoopTimer(loop: loop) { [unowned self] in self.check() }
        timer.start(after: 1, repeat: 1)
        watch = timer
    }

    func stop() {
        watch?.stop()
        subscriber.stop()
    }

    /// Starts listening on a topic's channel (while this node has a member).
    func subscribe(topic: String) {
        let channel = Array(RedisKeys.topicChannel(topic).utf8)
        channels.insert(channel)
        subscriber.subscribe(channels: [channel]) { [unowned self] in self.received($0, $1) }
    }

    /// Stops listening on a topic's channel (its last local member left).
    func unsubscribe(topic: String) {
        let channel = Array(RedisKeys.topicChannel(topic).utf8)
        channels.remove(channel)
        subscriber.unsubscribe(channels: [channel])
    }

    /// Once a second: a subscriber not ready for ``switchAfter`` seconds is replaced by one on the next seed.
    private func check() {
        let now = Posix.monotonicSeconds()
        if subscriber.isReady {
            downSince = nil
            return
        }
        guard let since = downSince else {
            downSince = now
            return
        }
        guard now - since >= Self.switchAfter else { return }
        current = (current + 1) % urls.count
        logger.warning(
            "node channel: Redis not reachable, subscribing on the next seed",
            metadata: ["from": "\(subscriber.url)", "to": "\(urls[current])"])
        subscriber.stop()
        retired = subscriber
        subscriber = RedisClient(loop: loop, url: urls[current], name: "node-channel", logger: logger)
        setUp(subscriber)
        subscriber.start()
        downSince = now
    }

    /// Whether every message published on `channel` from now on reaches this node: the connection is up and Redis
    /// confirmed the subscription (what a node needs to know before it waits for its own message to come back).
    func isListening(to channel: String) -> Bool { subscriber.isSubscribed(to: Array(channel.utf8)) }

    private func received(_ channel: [UInt8], _ payload: [UInt8]) {
        guard let message = NodeMessage(payload: payload) else {
            logger.warning(
                "unreadable message on a node channel",
                metadata: ["channel": "\(String(decoding: channel, as: UTF8.self))", "bytes": "\(payload.count)"])
            return
        }
        onNodeMessage?(message)
    }
}
