import PushCore
import PushPosix

/// The message server's door to Redis (SPEC §5), as the connection server and the HTTP API use it: the command
/// connection that runs the scripts (``ScriptRunner``) and the subscription to this node's channels
/// (``NodeChannel``), under one name. It only forwards; each part is built and wired in `Worker`.
final class MessageStore {
    let scripts: ScriptRunner
    let channel: NodeChannel
    /// This node's id: unique per worker process, it names the node in sessions and its channel.
    let node: String

    init(scripts: ScriptRunner, channel: NodeChannel, node: String) {
        self.scripts = scripts
        self.channel = channel
        self.node = node
    }

    /// The command connections (figures for the admin snapshot).
    var redis: RedisCommands { scripts.redis }

    /// Messages from other nodes: on this node's channel (`pg:node:<id>`), `pg:all`, and the topics subscribed.
    var onNodeMessage: ((NodeMessage) -> Void)? {
        get { channel.onNodeMessage }
        set { channel.onNodeMessage = newValue }
    }

    /// Runs `handler` each time the command connection is (again) ready, after the scripts were sent to load.
    func whenReady(_ handler: @escaping () -> Void) { scripts.whenReady(handler) }

    /// Runs `handler` each time Redis confirmed the node channel's subscriptions (first connect and every
    /// reconnect): what was published while the connection was down is lost, and everything published from now
    /// on arrives.
    func whenNodeChannelReady(_ handler: @escaping () -> Void) { channel.whenSubscribed(handler) }

    /// Starts listening on a topic's channel (while this node has a member).
    func subscribe(topic: String) { channel.subscribe(topic: topic) }

    /// Stops listening on a topic's channel (its last local member left).
    func unsubscribe(topic: String) { channel.unsubscribe(topic: topic) }

    /// Publishes `message` on `channel`; `done` gets the number of nodes that received it (0 when Redis is down).
    func publish(_ channel: String, _ message: NodeMessage, _ done: ((Int) -> Void)? = nil) {
        scripts.publish(channel, message, done)
    }

    /// Whether commands can be sent now.
    var isAvailable: Bool { scripts.isAvailable }

    /// Runs one script and decodes its reply.
    func run<Call: ScriptCall>(_ call: Call, _ done: @escaping (Result<Call.Result, StoreFailure>) -> Void) {
        scripts.run(call, done)
    }

    /// Stores one message with the others of this loop iteration (``ScriptRunner/store(_:_:)``).
    func store(_ call: StoreCall, _ done: @escaping (Result<StoreResult, StoreFailure>) -> Void) {
        scripts.store(call, done)
    }

    /// Moves a device's ACK cursor forward with the other ACKs of this loop iteration (``ScriptRunner/ack(_:)``).
    func ack(_ call: AckCall) { scripts.ack(call) }

    /// Runs a session script through ``ScriptRunner``'s bounded queue.
    func runSessionScript<Call: ScriptCall>(
        _ call: Call, _ done: @escaping (Result<Call.Result, StoreFailure>) -> Void
    ) {
        scripts.runSessionScript(call, done)
    }

    /// An AUTH's session script through the same queue, batched with the other AUTHs of this loop iteration.
    func runSessionScript(_ call: SessionCall, _ done: @escaping (Result<SessionResult, StoreFailure>) -> Void) {
        scripts.runSessionScript(call, done)
    }

    /// Sends a plain command whose reply only matters as success or failure.
    func command(_ args: [String], _ done: ((Bool) -> Void)? = nil) { scripts.command(args, done) }
}
