import PushCore
import PushPosix

/// Where a fan-out goes: a topic's members, every connection, or a goim room's members (SPEC §3, §5).
enum FanOutTarget {
    case topic(String)
    case all
    case room(String)

    /// The channel every node listening for it subscribes to: the topic's, or `pg:all` for broadcasts and rooms.
    var channel: String {
        switch self {
        case .topic(let topic): RedisKeys.topicChannel(topic)
        case .all, .room: RedisKeys.broadcastChannel
        }
    }

    func message(origin: String, serial: UInt64, op: Operation, payload: [UInt8]) -> NodeMessage {
        switch self {
        case .topic(let topic): .topic(origin: origin, serial: serial, topic: topic, op: op.rawValue, payload: payload)
        case .all: .broadcast(origin: origin, serial: serial, room: nil, op: op.rawValue, payload: payload)
        case .room(let room): .broadcast(origin: origin, serial: serial, room: room, op: op.rawValue, payload: payload)
        }
    }
}

/// Topic messages, broadcasts and goim room messages in one order on every node (README, "Fan-out order").
///
/// Every node delivers them to its members as they come from Redis pub/sub, in the order Redis ran the PUBLISHes
/// (each subscriber of a channel sees them in that order), and this node's own are no exception: it publishes a
/// fan-out with a serial, delivers to its members when that copy comes back on its subscription, and answers once
/// Redis answered the PUBLISH and the copy was delivered here. So a push answered before another was sent is
/// delivered before it on every node, whichever nodes answered them.
///
/// Delivered here at once instead, as before (at-most-once, SPEC §2), when the copy cannot come back: Redis is not
/// connected, or this node's subscription to the channel is not confirmed (the connection is down, or the first
/// member of a topic joined a moment ago and its SUBSCRIBE is on its way), or the PUBLISH failed or reached no one.
/// A copy that comes back after all is skipped by its serial. One that has not come back `copyWait` after Redis
/// answered (the subscription was lost in between) is delivered here then.
final class FanOuts {
    private let delivery: LocalDelivery
    private let store: MessageStore

    /// A fan-out of this node waiting for Redis's answer to its PUBLISH and for its own copy.
    private struct InFlight {
        let target: FanOutTarget
        let op: Operation
        let payload: [UInt8]
        let done: (_ delivered: Int, _ nodes: Int) -> Void
        /// Connections reached here, once delivered.
        var delivered: Int?
        /// Whether it was delivered from its copy (which Redis then counted among the receivers).
        var cameBack = false
        /// Redis's count of receivers, once it answered, and when (monotonic seconds).
        var receivers: Int?
        var answeredAt = 0.0
    }

    private var inFlight: [UInt64: InFlight] = [:]
    private var nextSerial: UInt64 = 1
    private var copyTimer: LoopTimer!

    /// How long after Redis answered a PUBLISH this node waits for its copy. The copy is normally read in the same
    /// loop iteration as the answer, or the next; only a subscription lost in between keeps it away.
    static let copyWait = 1.0

    init(loop: EventLoop, delivery: LocalDelivery, store: MessageStore) {
        self.delivery = delivery
        self.store = store
        copyTimer = LoopTimer(loop: loop) { [unowned self] in self.deliverOverdue() }
    }

    /// Sends a fan-out to every node listening, this one included; `done` gets the connections it reached here
    /// and how many other nodes Redis handed it to, once Redis ordered it (answered the PUBLISH).
    func send(
        _ target: FanOutTarget, op: Operation, payload: [UInt8],
        _ done: @escaping (_ delivered: Int, _ nodes: Int) -> Void
    ) {
        let channel = target.channel
        guard store.isAvailable, store.channel.isListening(to: channel) else {
            let delivered = deliverHere(target, op: op, payload: payload)
            store.publish(channel, target.message(origin: store.node, serial: 0, op: op, payload: payload)) {
                done(delivered, $0)
            }
            return
        }
        let serial = nextSerial
        nextSerial += 1
        inFlight[serial] = InFlight(target: target, op: op, payload: payload, done: done)
        store.publish(channel, target.message(origin: store.node, serial: serial, op: op, payload: payload)) {
            [unowned self] receivers in self.answered(serial, receivers: receivers)
        }
    }

    /// Another node's fan-out: delivered to the members here as it comes.
    func received(_ target: FanOutTarget, op: Operation, payload: [UInt8]) {
        _ = deliverHere(target, op: op, payload: payload)
    }

    /// This node's copy of its fan-out `serial` came back: delivered here now, in Redis's order. A copy of one
    /// delivered here already (serial 0, or one given up on) is skipped.
    func ownCopy(_ serial: UInt64) {
        guard var entry = inFlight[serial], entry.delivered == nil else { return }
        entry.delivered = deliverHere(entry.target, op: entry.op, payload: entry.payload)
        entry.cameBack = true
        guard entry.receivers != nil else {
            inFlight[serial] = entry
            return
        }
        finish(serial, entry)
    }

    /// Redis answered the PUBLISH of `serial` (0 receivers: it failed, or this node was not among them).
    private func answered(_ serial: UInt64, receivers: Int) {
        guard var entry = inFlight[serial] else { return }
        entry.receivers = receivers
        if entry.delivered == nil {
            guard receivers == 0 || !store.channel.isListening(to: entry.target.channel) else {
                entry.answeredAt = Posix.monotonicSeconds()
                inFlight[serial] = entry
                if !copyTimer.isActive { copyTimer.start(after: Self.copyWait) }
                return
            }
            // The copy will not come: the members here get it now.
            entry.delivered = deliverHere(entry.target, op: entry.op, payload: entry.payload)
        }
        finish(serial, entry)
    }

    /// Fan-outs whose copy did not come back `copyWait` after Redis answered: delivered here now.
    private func deliverOverdue() {
        let now = Posix.monotonicSeconds()
        var next: Double?
        for (serial, var entry) in inFlight where entry.delivered == nil && entry.receivers != nil {
            let due = entry.answeredAt + Self.copyWait
            guard due <= now else {
                next = min(next ?? due, due)
                continue
            }
            entry.delivered = deliverHere(entry.target, op: entry.op, payload: entry.payload)
            finish(serial, entry)
        }
        if let next { copyTimer.start(after: max(0.01, next - now)) }
    }

    private func finish(_ serial: UInt64, _ entry: InFlight) {
        inFlight[serial] = nil
        let receivers = entry.receivers ?? 0
        entry.done(entry.delivered ?? 0, max(0, receivers - (entry.cameBack ? 1 : 0)))
    }

    /// Delivers to the members here; returns how many connections got it (a goim room: the room's members here,
    /// who get it with the room's other messages of this loop iteration).
    private func deliverHere(_ target: FanOutTarget, op: Operation, payload: [UInt8]) -> Int {
        switch target {
        case .topic(let topic):
            delivery.deliver(Frame.encoded(operation: op, body: payload), operation: op, toTopic: topic)
        case .all:
            delivery.deliverToAll(Frame.encoded(operation: op, body: payload), operation: op)
        case .room(let room):
            delivery.queueRoomMessage(room, op: op.rawValue, payload: payload)
        }
    }
}
