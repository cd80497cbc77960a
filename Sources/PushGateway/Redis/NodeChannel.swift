import Logging
import PushCore
import PushPosix

/// This node's subscription connection to Redis: its own channel (`pg:node:<id>`, stored deliveries and routed
/// pushes from other nodes), `pg:all`, and the topics it has members of. A connection of its own, because a
/// subscribed Redis connection takes no other commands.
final class NodeChannel {
    private let subscriber: RedisClient
    private let logger: Logger

    /// Messages from other nodes: on this node's channel (`pg:node:<id>`), `pg:all`, and the topics subscribed.
    var onNodeMessage: ((NodeMessage) -> Void)?
    private var subscribedHandlers: [() -> Void] = []

    init(loop: EventLoop, url: RedisURL, node: String, logger: Logger) {
        self.logger = logger
        subscriber = RedisClient(loop: loop, url: url, name: "node-channel", logger: logger)
        let channels = [RedisKeys.nodeChannel(node), RedisKeys.broadcastChannel].map { Array($0.utf8) }
        subscriber.subscribe(channels: channels) { [unowned self] in self.received($0, $1) }
        subscriber.onSubscribed = { [unowned self] in for handler in self.subscribedHandlers { handler() } }
    }

    /// Runs `handler` each time Redis confirmed the subscriptions (first connect and every reconnect): what was
    /// published while the connection was down is lost, and everything published from now on arrives.
    func whenSubscribed(_ handler: @escaping () -> Void) { subscribedHandlers.append(handler) }

    func start() { subscriber.start() }

    func stop() { subscriber.stop() }

    /// Starts listening on a topic's channel (while this node has a member).
    func subscribe(topic: String) {
        subscriber.subscribe(channels: [Array(RedisKeys.topicChannel(topic).utf8)]) { [unowned self] in self.received($0, $1) }
    }

    /// Stops listening on a topic's channel (its last local member left).
    func unsubscribe(topic: String) {
        subscriber.unsubscribe(channels: [Array(RedisKeys.topicChannel(topic).utf8)])
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
