import Glibc
import PushCore
import PushPosix

/// Every push of this node, whichever API it came in through (SPEC §2, §3): its recipients resolved, stored in
/// Redis when it is a stored push (before anyone hears 200), delivered to the connections here, and told to the
/// other nodes that hold the recipients' sessions (or to every node, for topics, broadcasts and goim keys).
/// The HTTP endpoints only parse requests into calls of this and write its receipts out.
final class PushPipeline {
    private unowned(unsafe) let hub: ConnectionServer
    private let delivery: LocalDelivery
    private let nodes: NodeMessages
    private let store: MessageStore
    private let stats: WorkerStats
    private let inbox: GatewayConfiguration.Inbox
    /// Storage is a Redis Cluster: notifications go to the stream of the user's slot (``RedisKeys/notifyStream``).
    private let onCluster: Bool
    private var idGenerator = SplitMix64()

    init(
        hub: ConnectionServer, delivery: LocalDelivery, nodes: NodeMessages, store: MessageStore, stats: WorkerStats,
        inbox: GatewayConfiguration.Inbox, onCluster: Bool = false
    ) {
        self.onCluster = onCluster
        self.hub = hub
        self.delivery = delivery
        self.nodes = nodes
        self.store = store
        self.stats = stats
        self.inbox = inbox
    }

    // MARK: - /v1 pushes

    /// One push (`POST /v1/push`, or an item of a batch).
    ///
    /// A stored push always has an idempotency key: the backend's `id`, or one generated here from the time the
    /// message is stored with (`Idempotency.generatedID`), so that a push whose outcome is unknown (the connection to
    /// Redis was lost or stalled with the script in flight) can be retried with the id its 503 names and is stored
    /// exactly once. A generated key writes no record: a retry with it finds the stored message in the inbox.
    func push(_ push: PushRequest, _ done: @escaping (PushOutcome) -> Void) {
        stats.pushes += 1
        let now = Self.nowMillis()
        let id = push.id ?? Idempotency.generatedID(nowMillis: now, random: idGenerator.next())
        guard push.store else { return transient(push, id: id, done) }
        var users: [String] = []
        switch push.target {
        case .users(let list): users = list
        case .devices(let devices):
            // A stored push lands in the user's inbox, which every device of the user follows (SPEC §2).
            for device in devices where !users.contains(device.user) { users.append(device.user) }
        case .topic, .all: return transient(push, id: id, done)
        }
        guard store.isAvailable else {
            return done(.failure(.notStored(id: id, users: users, outcomes: [], reason: "Redis is not available")))
        }
        var outcomes = [StoreOutcome](repeating: .notStored, count: users.count)
        var failure: StoreFailure?
        var remaining = users.count
        for (index, user) in users.enumerated() {
            let call = StoreCall(
                uid: user, op: push.operation.rawValue, payload: push.payload, nowMillis: now,
                ttl: push.ttl ?? inbox.ttl, inboxMax: inbox.max, inboxTTL: inbox.ttl, node: store.node,
                idempotency: push.id.map { Idempotency(id: $0, bodyHash: push.bodyHash) },
                notification: push.notify.map {
                    StoreCall.Notification(
                        json: $0, always: push.notifyAlways,
                        stream: RedisKeys.notifyStream(forUser: user, cluster: onCluster))
                })
            // The script published the message to the user's other nodes; it is delivered here as it stored it.
            // Batched with the other stored messages of this loop iteration: results come back in order.
            store.store(call) { [self] result in
                switch result {
                case .success(let stored):
                    outcomes[index] = .answered(stored)
                    if case .stored(_, _, _, _, let message) = stored {
                        stats.stored += 1
                        delivery.deliverStored(message, toUser: user)
                    }
                case .failure(let error):
                    outcomes[index] = error.mayHaveRun ? .unknown : .notStored
                    failure = error
                }
                remaining -= 1
                guard remaining == 0 else { return }
                done(receipt(id: id, users: users, outcomes: outcomes, failure: failure))
            }
        }
    }

    private func receipt(id: String, users: [String], outcomes: [StoreOutcome], failure: StoreFailure?) -> PushOutcome {
        if let failure {
            let reason = "Redis did not store the push (\(failure))"
            return .failure(.notStored(id: id, users: users, outcomes: outcomes, reason: reason))
        }
        if outcomes.contains(where: { if case .answered(.conflict) = $0 { true } else { false } }) {
            return .failure(.conflict(id: id))
        }
        var seqs: [UInt64] = []
        var online: [Int] = []
        seqs.reserveCapacity(users.count)
        online.reserveCapacity(users.count)
        for (user, outcome) in zip(users, outcomes) {
            guard case .answered(let result) = outcome else { continue }
            seqs.append(result.seq ?? 0)
            let devices = if case .stored(_, _, _, let devices, _) = result { devices } else { 0 }
            online.append(max(devices, hub.users.count(of: user)))
        }
        return .success(.stored(id: id, users: users, seqs: seqs, online: online))
    }

    /// A transient push: delivered to the connections online on this node now, and published to the other
    /// nodes that hold the addressed users' sessions. Topics and broadcasts go through Redis to every node, this one
    /// included, so that every node delivers them in one order (``NodeMessages/fanOut(_:op:payload:_:)``). Never
    /// stored; with Redis down it still reaches this node's connections (at-most-once, SPEC §2).
    private func transient(_ push: PushRequest, id: String, _ done: @escaping (PushOutcome) -> Void) {
        let op = push.operation
        switch push.target {
        case .users(let users):
            let encoded = Frame.encoded(operation: op, body: push.payload)
            route(users.map { ($0, nil) }, op: op, payload: push.payload, encoded: encoded) { online in
                done(.success(.transient(id: id, online: online)))
            }
        case .devices(let devices):
            let encoded = Frame.encoded(operation: op, body: push.payload)
            route(devices.map { ($0.user, $0.key) }, op: op, payload: push.payload, encoded: encoded) { online in
                done(.success(.transient(id: id, online: online)))
            }
        case .all:
            // Answered once Redis ordered it and it reached the connections here (README, "Fan-out order").
            nodes.fanOut(.all, op: op, payload: push.payload) { delivered, others in
                done(.success(.fanOut(id: id, delivered: delivered, nodes: others)))
            }
        case .topic(let topic):
            nodes.fanOut(.topic(topic), op: op, payload: push.payload) { delivered, others in
                done(.success(.fanOut(id: id, delivered: delivered, nodes: others)))
            }
        }
    }

    /// Delivers to each (user, device) here and routes it to the other nodes with their sessions; `done` gets
    /// each user's online device count (all nodes when Redis answers, else this node's).
    private func route(
        _ targets: [(user: String, device: String?)], op: Operation, payload: [UInt8], encoded: [UInt8],
        _ done: @escaping ([(String, Int)]) -> Void
    ) {
        var online: [(String, Int)] = []
        var remaining = targets.count
        for (user, device) in targets {
            let local = delivery.deliver(encoded, operation: op, toUser: user, device: device).online
            let index = online.firstIndex { $0.0 == user } ?? {
                online.append((user, 0))
                return online.count - 1
            }()
            if hub.sessionsOnlyHere(user) {
                online[index].1 += local
                remaining -= 1
                if remaining == 0 { done(online) }
                continue
            }
            nodes.route(user: user, device: device, op: op.rawValue, payload: payload) { result in
                if case .success(let routed) = result {
                    online[index].1 += max(routed.devices, local)
                } else {
                    online[index].1 += local
                }
                remaining -= 1
                if remaining == 0 { done(online) }
            }
        }
    }

    // MARK: - goim pushes (transient, as in goim)

    /// goim's push by user ids.
    func push(toUsers users: [String], op: Operation, payload: [UInt8], _ done: @escaping () -> Void) {
        stats.pushes += 1
        let encoded = Frame.encoded(operation: op, body: payload)
        route(users.map { ($0, nil) }, op: op, payload: payload, encoded: encoded) { _ in done() }
    }

    /// goim's push by device keys: delivered to the key here, and told to every node.
    func push(toKeys keys: [String], op: Operation, payload: [UInt8]) {
        stats.pushes += 1
        let encoded = Frame.encoded(operation: op, body: payload)
        for key in keys {
            _ = delivery.deliver(encoded, operation: op, toKey: key)
            nodes.publish(key: key, op: op.rawValue, payload: payload)
        }
    }

    /// goim's push to a room (`type://room`), in one order on every node and batched per loop iteration there;
    /// `done` once Redis ordered it (as a topic push).
    func push(toRoom room: String, op: Operation, payload: [UInt8], _ done: @escaping () -> Void) {
        stats.pushes += 1
        nodes.fanOut(.room(room), op: op, payload: payload) { _, _ in done() }
    }

    /// goim's push to every connection, as a broadcast.
    func pushToAll(op: Operation, payload: [UInt8], _ done: @escaping () -> Void) {
        stats.pushes += 1
        nodes.fanOut(.all, op: op, payload: payload) { _, _ in done() }
    }

    // MARK: - Kicks

    /// DISCONNECT to `user`'s device `key` here and on the nodes holding it, and its session removed; `done` gets
    /// how many connections were kicked here and whether Redis removed the session.
    func kick(user: String, key: String, _ done: @escaping (_ kicked: Int, _ removed: Bool) -> Void) {
        let kicked = hub.kick(user: user, key: key)
        nodes.kick(user: user, device: key)
        store.command(["HDEL", RedisKeys.sessions(user), key]) { removed in done(kicked, removed) }
    }

    // MARK: - Helpers

    static func nowMillis() -> UInt64 { Posix.wallMillis() }

    /// A push id when the backend gave none: 16 random hex digits (not a secret: a fast generator seeded once).
}
