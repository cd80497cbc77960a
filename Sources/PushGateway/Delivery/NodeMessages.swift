import PushCore
import PushPosix

/// What this node tells the others over Redis pub/sub, and what it does with what they tell it (SPEC §5,
/// `NodeMessage`): both halves of every node message live here. Stored messages are the exception on the sending
/// side: `store.lua` publishes them itself, in the same script that stores them; they are received here too.
final class NodeMessages {
    private unowned(unsafe) let hub: ConnectionServer
    private let delivery: LocalDelivery
    private let store: MessageStore
    private let fanOuts: FanOuts

    init(hub: ConnectionServer, delivery: LocalDelivery, store: MessageStore) {
        self.hub = hub
        self.delivery = delivery
        self.store = store
        fanOuts = FanOuts(loop: hub.loop, delivery: delivery, store: store)
    }

    // MARK: - Sending

    /// Sends a transient push for `user` (its device `device`, or all of them) to every other node holding one of
    /// the user's sessions; the route script's answer carries the user's device count across nodes.
    func route(
        user: String, device: String?, op: UInt32, payload: [UInt8],
        _ done: @escaping (Result<RouteResult, StoreFailure>) -> Void
    ) {
        let message = NodeMessage.transient(user: user, device: device, op: op, payload: payload)
        store.run(RouteCall(uid: user, node: store.node, message: message, device: device), done)
    }

    /// Sends a topic message, broadcast or goim room message to every node listening, this one included, in one
    /// order on all of them (``FanOuts``); `done` gets the connections reached here and the other nodes told.
    func fanOut(
        _ target: FanOutTarget, op: Operation, payload: [UInt8],
        _ done: @escaping (_ delivered: Int, _ nodes: Int) -> Void
    ) {
        fanOuts.send(target, op: op, payload: payload, done)
    }

    /// Sends a goim push by device key to every node (keys are not routed: the node holding one is not known).
    func publish(key: String, op: UInt32, payload: [UInt8]) {
        store.publish(RedisKeys.broadcastChannel, .keyed(origin: store.node, key: key, op: op, payload: payload))
    }

    /// Tells the nodes holding `user`'s device `device` to send it DISCONNECT.
    func kick(user: String, device: String) {
        let message = NodeMessage.kick(user: user, device: device)
        store.run(RouteCall(uid: user, node: store.node, message: message, device: device)) { _ in }
    }

    // MARK: - Receiving

    /// A message from another node, or, on the shared channels, from this one: a goim keyed push was delivered here
    /// already, a topic message or broadcast is this node's copy of a fan-out (``fanOut(_:op:payload:_:)``).
    func received(_ message: NodeMessage) {
        switch message {
        case .stored(let stored):
            delivery.deliverStored(stored.message, toUser: stored.uid)
        case .transient(let user, let device, let op, let payload):
            _ = delivery.deliver(Self.frame(op, payload), operation: Operation(op), toUser: user, device: device)
        case .kick(let user, let device):
            _ = hub.kick(user: user, key: device)
        case .presence(let user):
            hub.noteSessionElsewhere(user)
        case .topic(let origin, let serial, let topic, let op, let payload):
            if origin == store.node { return fanOuts.ownCopy(serial) }
            fanOuts.received(.topic(topic), op: Operation(op), payload: payload)
        case .broadcast(let origin, let serial, let room, let op, let payload):
            if origin == store.node { return fanOuts.ownCopy(serial) }
            fanOuts.received(room.map(FanOutTarget.room) ?? .all, op: Operation(op), payload: payload)
        case .keyed(let origin, let key, let op, let payload) where origin != store.node:
            _ = delivery.deliver(Self.frame(op, payload), operation: Operation(op), toKey: key)
        case .keyed:
            break  // our own, already delivered here
        }
    }

    /// A transient application frame (seq 0), encoded once for every receiver here.
    private static func frame(_ op: UInt32, _ payload: [UInt8]) -> [UInt8] {
        Frame.encoded(operation: Operation(op), body: payload)
    }

    /// The node channel is subscribed (again). A presence note published while it was down is lost: every user
    /// connected now is routed through Redis until its last connection here leaves (a new AUTH learns where the
    /// user is). So may a stored message have been: every connection re-reads its inbox (once commands work).
    func channelReady() {
        hub.noteAllSessionsElsewhere()
        if store.isAvailable { delivery.catchUpAll() }
    }
}
