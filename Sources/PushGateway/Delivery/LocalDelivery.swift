import Glibc
import PushCore
import PushPosix

/// Delivery to this worker's connections (SPEC §2): transient frames as they come, each push encoded once for all
/// its receivers; stored messages in seq order per connection, a gap filled from Redis a few milliseconds after it
/// opened; goim room messages batched per loop iteration. The connections and their indexes are the hub's
/// (`ConnectionServer`); this is the only place that writes application frames to them.
final class LocalDelivery {
    private unowned(unsafe) let hub: ConnectionServer
    private let store: MessageStore
    private let stats: WorkerStats
    private let inboxMax: Int

    /// goim room messages queued this loop iteration, in the order they came: a room's consecutive messages of
    /// one operation share a batch, sent as one RAW frame, and a room's batches go out in order (another operation
    /// in between starts a new batch), so that a room's members get its messages in the order they came.
    private var roomBatches: [RoomBatch] = []
    /// Each room's last batch in `roomBatches`.
    private var lastRoomBatch: [String: Int] = [:]

    private struct RoomBatch {
        let room: String
        let op: UInt32
        var frames: [UInt8]
    }

    /// Connections holding messages behind a gap, filled a few milliseconds after it opened.
    private var gapped: [ObjectIdentifier: ClientConnection] = [:]
    private var gapTimer: LoopTimer!
    /// Users whose catch-up or gap fill could not ask Redis; asked again every `catchUpRetry` seconds.
    private var catchUpPending: Set<String> = []
    private var catchUpTimer: LoopTimer!
    /// Called after a stored message for a user reached this node (long-polls wait on it).
    var onStored: ((String) -> Void)?

    /// How long a gap may stay open before it is pulled from Redis: enough for a message that is merely
    /// overtaken on another path to arrive.
    static let gapWait = 0.005
    /// Seconds between attempts to catch up users whose inbox could not be read.
    static let catchUpRetry = 1.0

    init(hub: ConnectionServer, store: MessageStore, stats: WorkerStats, inboxMax: Int) {
        self.hub = hub
        self.store = store
        self.stats = stats
        self.inboxMax = inboxMax
        gapTimer = LoopTimer(loop: hub.loop) { [unowned self] in self.fillGaps() }
        catchUpTimer = LoopTimer(loop: hub.loop) { [unowned self] in self.retryCatchUps() }
    }

    // MARK: - Transient

    /// Delivers a framed application message to every local connection of `user` (on device `device`, if given)
    /// that accepts `operation`; returns how many connections the user has here and how many got it.
    func deliver(
        _ encoded: [UInt8], operation: Operation, toUser user: String, device: String? = nil
    ) -> (online: Int, delivered: Int) {
        var online = 0
        var delivered = 0
        hub.users.forEach(of: user) { connection in
            if let device, connection.session.key != device { return }
            online += 1
            guard connection.session.accepts(operation), connection.isOpen else { return }
            if connection.send(encoded: encoded) { delivered += 1 }
        }
        stats.delivered += delivered
        return (online, delivered)
    }

    /// Delivers to every authenticated local connection that accepts `operation`.
    func deliverToAll(_ encoded: [UInt8], operation: Operation) -> Int {
        var delivered = 0
        hub.users.forEachConnection { connection in
            guard connection.session.accepts(operation), connection.isOpen else { return }
            if connection.send(encoded: encoded) { delivered += 1 }
        }
        stats.delivered += delivered
        return delivered
    }

    /// Delivers to the local members of a topic.
    func deliver(_ encoded: [UInt8], operation: Operation, toTopic topic: String) -> Int {
        var delivered = 0
        for connection in hub.topics.members(topic) where connection.isOpen && connection.session.accepts(operation) {
            if connection.send(encoded: encoded) { delivered += 1 }
        }
        stats.delivered += delivered
        return delivered
    }

    /// Delivers to the local connection with goim device key `key`; returns whether one got it.
    func deliver(_ encoded: [UInt8], operation: Operation, toKey key: String) -> Bool {
        guard let connection = hub.byKey[key], connection.isOpen, connection.session.accepts(operation) else {
            return false
        }
        guard connection.send(encoded: encoded) else { return false }
        stats.delivered += 1
        return true
    }

    /// Queues a goim room message: the room's messages of one loop iteration go out together, as goim's comet
    /// batches them into one RAW frame (op 9, whole frames concatenated); returns the room's members here.
    @discardableResult
    func queueRoomMessage(_ room: String, op: UInt32, payload: [UInt8]) -> Int {
        if let last = lastRoomBatch[room], roomBatches[last].op == op {
            Frame.encode(operation: Operation(op), sequence: 0, body: payload, into: &roomBatches[last].frames)
        } else {
            var frames: [UInt8] = []
            Frame.encode(operation: Operation(op), sequence: 0, body: payload, into: &frames)
            lastRoomBatch[room] = roomBatches.count
            roomBatches.append(RoomBatch(room: room, op: op, frames: frames))
        }
        return hub.rooms.count(room)
    }

    /// Sends the room batches of this loop iteration (before the loop sleeps).
    func flushRoomBatches() {
        guard !roomBatches.isEmpty else { return }
        let batches = roomBatches
        roomBatches = []
        lastRoomBatch = [:]
        for batch in batches {
            // Encoded once: a TCP member gets the RAW's body (the frames themselves), a WebSocket member the whole RAW
            // frame in one message, both appended from these bytes.
            let raw = Frame.encoded(operation: .raw, body: batch.frames)
            var delivered = 0
            for connection in hub.rooms.members(batch.room)
            where connection.isOpen && connection.session.accepts(Operation(batch.op)) {
                if connection.send(roomBatch: raw) { delivered += 1 }
            }
            stats.delivered += delivered
        }
    }

    // MARK: - Stored, in seq order

    /// Offers a stored message to every local connection of `user`, each in its own seq order.
    func deliverStored(_ message: StoredMessage, toUser user: String) {
        hub.users.forEach(of: user) { connection in
            guard connection.isOpen else { return }
            send(connection.delivery.offer(message), to: connection)
            noteGap(connection)
        }
        onStored?(user)
    }

    /// Starts a freshly authenticated connection's stored delivery: what AUTH's script returned (the device's
    /// backlog from `start`), then whatever arrived meanwhile, in order.
    func resume(_ connection: ClientConnection, with messages: [StoredMessage], after start: UInt64) {
        for message in messages { _ = connection.delivery.offer(message) }
        send(connection.delivery.resume(after: start), to: connection)
        noteGap(connection)
    }

    /// A connection that closes holds no gap any more.
    func forget(_ connection: ClientConnection) {
        gapped[ObjectIdentifier(connection)] = nil
    }

    private func send(_ messages: [StoredMessage], to connection: ClientConnection) {
        for message in messages where connection.session.accepts(Operation(message.op)) {
            let sent = connection.enqueueFrame(length: Frame.encodedLength(of: message)) {
                Frame.encode(message, into: &$0)
            }
            if sent { stats.deliveredStored(pushedAtMillis: message.timestampMillis) }
        }
    }

    private func noteGap(_ connection: ClientConnection) {
        guard connection.delivery.missing != nil else { return }
        gapped[ObjectIdentifier(connection)] = connection
        if !gapTimer.isActive { gapTimer.start(after: Self.gapWait) }
    }

    /// Pulls every open gap from Redis. A gap Redis answered it no longer has (trimmed, expired) is skipped: the
    /// client sees the jump in seq and can SYNC what is left. A gap Redis could not be asked about is kept, and
    /// asked about again (the user's catch-up) until Redis answers.
    private func fillGaps() {
        let connections = gapped.values
        gapped = [:]
        for connection in connections {
            guard connection.isOpen, let missing = connection.delivery.missing else { continue }
            stats.gapFills += 1
            let user = connection.session.user
            let call = SyncCall(
                uid: user, after: missing.lowerBound - 1,
                limit: Int(min(missing.upperBound - missing.lowerBound + 1, UInt64(inboxMax))),
                nowSeconds: Posix.wallSeconds())
            store.run(call) { [weak self] result in
                guard let self, connection.isOpen else { return }
                guard case .success(let sync) = result else { return self.catchUpLater(user) }
                var ready: [StoredMessage] = []
                for message in sync.messages { ready += connection.delivery.offer(message) }
                if let still = connection.delivery.missing, still.lowerBound <= missing.upperBound {
                    ready += connection.delivery.skipGap()
                }
                self.send(ready, to: connection)
                self.noteGap(connection)
            }
        }
    }

    // MARK: - Catching up after Redis was away

    /// Every local user re-reads its inbox after its last delivered seq: called when the command connection is
    /// ready again, and when the node channel is subscribed again, since a stored message may have been
    /// published to this node while either was down (and then nothing would deliver it until the user's next
    /// message). Catch-ups go through the bounded session-script queue, so a worker with many users does not
    /// flood Redis as it comes back.
    func catchUpAll() {
        catchUpPending = []
        catchUpTimer.stop()
        for user in hub.users.users { catchUp(user) }
    }

    /// Reads `user`'s inbox after the lowest seq its connections here have delivered and offers what comes back
    /// to each of them; a connection still missing messages then fills its gap as usual.
    private func catchUp(_ user: String) {
        var after = UInt64.max
        hub.users.forEach(of: user) { connection in
            guard connection.isOpen, !connection.session.isAuthenticating else { return }
            after = min(after, connection.delivery.lastSeq)
        }
        guard after != .max else { return }
        stats.catchUps += 1
        let call = SyncCall(uid: user, after: after, limit: inboxMax, nowSeconds: Posix.wallSeconds())
        store.runSessionScript(call) { [weak self] result in
            guard let self else { return }
            guard case .success(let sync) = result else { return self.catchUpLater(user) }
            self.hub.users.forEach(of: user) { connection in
                guard connection.isOpen, !connection.session.isAuthenticating else { return }
                var ready: [StoredMessage] = []
                for message in sync.messages { ready += connection.delivery.offer(message) }
                self.send(ready, to: connection)
                self.noteGap(connection)
            }
            if !sync.messages.isEmpty { self.onStored?(user) }
        }
    }

    /// Redis could not be asked about `user`'s inbox: ask again in a second (or at the reconnect, when all
    /// users catch up anyway). Nothing is skipped meanwhile.
    private func catchUpLater(_ user: String) {
        catchUpPending.insert(user)
        if !catchUpTimer.isActive { catchUpTimer.start(after: Self.catchUpRetry) }
    }

    private func retryCatchUps() {
        guard store.isAvailable else { return catchUpTimer.start(after: Self.catchUpRetry) }
        let users = catchUpPending
        catchUpPending = []
        for user in users { catchUp(user) }
    }
}
