/// What `store.lua` did with a push for one user.
public enum StoreResult: Equatable, Sendable {
    /// Stored as `seq`; `unread` is the user's count after it; `published` other nodes were sent it; the user
    /// has `devices` sessions (on any node); `message` is the element as the script stored it.
    case stored(seq: UInt64, unread: UInt64, published: Int, devices: Int, message: StoredMessage)
    /// The idempotency key already stored this push for this user as `seq`; nothing was stored again.
    case duplicate(seq: UInt64, unread: UInt64)
    /// The idempotency key was used before with a different body (HTTP 409).
    case conflict

    /// The user's seq for this push, nil on conflict.
    public var seq: UInt64? {
        switch self {
        case .stored(let seq, _, _, _, _), .duplicate(let seq, _): seq
        case .conflict: nil
        }
    }
}

/// `store.lua` for one message: store it for one user and publish it to the other nodes holding the user's sessions.
/// Also an item of a ``StoreBatchCall``.
public struct StoreCall: ScriptCall {
    public static var script: Script { Scripts.store }

    public var uid: String
    public var op: UInt32
    public var payload: [UInt8]
    /// Now, unix milliseconds: the message's timestamp, and its expiry is counted from it.
    public var nowMillis: UInt64
    /// Seconds the message is kept; 0 keeps it until the cap or the inbox's own expiry removes it.
    public var ttl: Int
    /// `inbox.max`: messages kept, at least 1.
    public var inboxMax: Int
    /// `inbox.ttl`: seconds the inbox key lives after the last store, at least 1 (meta lives 4 times as long).
    public var inboxTTL: Int
    /// This node's id: its own sessions are not published to (it delivers to them itself).
    public var node: String
    /// The push's idempotency key, if it has one.
    public var idempotency: Idempotency?
    /// The push's `notify` (SPEC §10), if it has one: the script queues a notification per offline device.
    public var notification: Notification?

    /// What a stored push asks to be told to devices without a socket.
    public struct Notification: Equatable, Sendable {
        /// The `notify` object as JSON, handed to the notifiers as it is.
        public var json: [UInt8]
        /// `notify.always`: online devices are notified too.
        public var always: Bool
        /// The stream the notification goes to (``RedisKeys/notifyStream(forUser:cluster:)``).
        public var stream: String

        public init(json: [UInt8], always: Bool, stream: String) {
            self.json = json
            self.always = always
            self.stream = stream
        }
    }

    public init(
        uid: String, op: UInt32, payload: [UInt8], nowMillis: UInt64, ttl: Int, inboxMax: Int, inboxTTL: Int,
        node: String, idempotency: Idempotency? = nil, notification: Notification? = nil
    ) {
        self.notification = notification
        self.uid = uid
        self.op = op
        self.payload = payload
        self.nowMillis = nowMillis
        self.ttl = ttl
        self.inboxMax = inboxMax
        self.inboxTTL = inboxTTL
        self.node = node
        self.idempotency = idempotency
    }

    /// Its KEYS and ARGV fields in a `store.lua` call: keys inbox, meta, sessions, polls, and with an idempotency
    /// key the record written and the records looked up, when it notifies the push tokens and the stream; 13 ARGV
    /// fields (after the header).
    func append(keys: inout [[UInt8]], args: inout [[UInt8]]) {
        keys.append(Array(RedisKeys.inbox(uid).utf8))
        keys.append(Array(RedisKeys.meta(uid).utf8))
        keys.append(Array(RedisKeys.sessions(uid).utf8))
        keys.append(Array(RedisKeys.polls(uid).utf8))
        args.append(decimal(UInt64(op)))
        args.append(payload)
        args.append(decimal(nowMillis))
        args.append(decimal(ttl))
        args.append(Array(uid.utf8))
        if let idempotency {
            let records = idempotency.records(uid: uid, nowSeconds: nowMillis / 1000)
            keys.append(Array(records.write.utf8))
            for lookup in records.lookups { keys.append(Array(lookup.utf8)) }
            args.append(Array(idempotency.id.utf8))
            args.append(decimal(records.lookups.count))
            args.append(Array(idempotency.bodyHash.utf8))
            args.append(decimal(Idempotency.backendTTL))
            args.append(decimal(records.expiresAt))
            args.append(generatedAt(idempotency.id).map { decimal($0) } ?? [])
        } else {
            args.append(contentsOf: [[], [], [], [], [], []])
        }
        if let notification {
            keys.append(Array(RedisKeys.pushTokens(uid).utf8))
            keys.append(Array(notification.stream.utf8))
            args.append(notification.json)
            args.append(notification.always ? [UInt8(ascii: "1")] : [])
        } else {
            args.append(contentsOf: [[], []])
        }
    }

    /// The time a key of the generated form names, when the message it names may still be in the inbox (from an
    /// inbox ttl ago to a minute ahead, for clocks apart): a backend's own 16-hex-digit key names a random time,
    /// almost never in that window, and must not cost a read of the inbox per push.
    private func generatedAt(_ id: String) -> UInt64? {
        guard let at = Idempotency.generatedTime(id) else { return nil }
        let slack: UInt64 = 60_000
        guard at <= nowMillis + slack, at + UInt64(inboxTTL) * 1000 + slack >= nowMillis else { return nil }
        return at
    }

    /// Whether `other` can go in the same `store.lua` call: the header (cap, inbox ttl, node) is common to all.
    public func sharesHeader(with other: StoreCall) -> Bool {
        inboxMax == other.inboxMax && inboxTTL == other.inboxTTL && node == other.node
    }

    /// The Redis Cluster slot of the user's keys (`{u:<uid>}`).
    public var slot: UInt16 { RedisSlot.of(key: RedisKeys.meta(uid)) }

    public var keys: [[UInt8]] { StoreBatchCall(self).keys }
    public var args: [[UInt8]] { StoreBatchCall(self).args }
    public var evalsha: [[UInt8]] { StoreBatchCall(self).evalsha }
    public var eval: [[UInt8]] { StoreBatchCall(self).eval }

    /// The reply of a call of one message: its one entry.
    public static func decode(_ reply: RedisValue) throws -> StoreResult {
        let entries = try StoreBatchCall.decode(reply)
        guard entries.count == 1 else {
            throw ScriptError.unexpectedReply(script: script.name, "expected 1 entry, got \(entries.count)", reply: reply)
        }
        return try entries[0].get()
    }

    /// `{seq, 0, unread, published, devices, element}` stored, `{seq, 1, unread}` duplicate, `{-1}` conflict.
    static func decodeEntry(_ reply: RedisValue) throws -> StoreResult {
        let reader = try ReplyReader(script.name, reply)
        let first = try reader.int(0, "seq")
        if first == -1, reader.count == 1 { return .conflict }
        guard first >= 1 else { throw reader.unexpected("seq \(first) is not positive") }
        switch try reader.int(1, "duplicate flag") {
        case 0 where reader.count == 6:
            guard let message = StoredMessage(encoded: try reader.bytes(5, "element")), message.seq == UInt64(first) else {
                throw reader.unexpected("element 5 is not the stored message")
            }
            return .stored(
                seq: UInt64(first), unread: try reader.count(2, "unread"), published: Int(try reader.count(3, "published")),
                devices: Int(try reader.count(4, "devices")), message: message)
        case 1 where reader.count == 3:
            return .duplicate(seq: UInt64(first), unread: try reader.count(2, "unread"))
        default:
            throw reader.unexpected("expected {seq, 0, unread, published, devices, element}, {seq, 1, unread} or {-1}")
        }
    }
}

/// `store.lua` for several messages at once (one push to many users, or the stored pushes of one loop iteration):
/// one script call instead of one per message. Each message keeps its own result: a message whose keys Redis
/// refuses fails alone.
public struct StoreBatchCall: EncodedBatchCall {
    public typealias Item = StoreCall
    public typealias Entry = StoreResult
    public static var script: Script { Scripts.store }

    /// The messages, stored in this order; all share ``StoreCall/sharesHeader(with:)`` with the first.
    public var items: [StoreCall]

    public init(_ items: [StoreCall]) {
        precondition(!items.isEmpty, "StoreBatchCall of no message")
        self.items = items
    }

    public init(_ item: StoreCall) { self.init([item]) }

    public var encoded: (keys: [[UInt8]], args: [[UInt8]]) {
        let first = items[0]
        var keys: [[UInt8]] = []
        keys.reserveCapacity(items.count * 5)
        var args: [[UInt8]] = [
            decimal(first.inboxMax), decimal(first.inboxTTL), Array(first.node.utf8), decimal(items.count),
        ]
        args.reserveCapacity(4 + items.count * 13)
        for item in items { item.append(keys: &keys, args: &args) }
        return (keys, args)
    }

    public static func slot(of item: StoreCall) -> UInt16 { item.slot }

    public static func canShare(_ item: StoreCall, with first: StoreCall) -> Bool { item.sharesHeader(with: first) }

    /// Payload bytes: a batch is closed at ``BatchScriptCall`` limits so one script never carries megabytes.
    public static func weight(of item: StoreCall) -> Int { item.payload.count + 64 }

    /// One entry per message, in order.
    public static func decode(_ reply: RedisValue) throws -> [Result<StoreResult, ScriptError>] {
        try decodeEntries(reply, StoreCall.decodeEntry)
    }
}
