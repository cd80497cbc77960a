/// What `session.lua` returns at AUTH.
public struct SessionResult: Equatable, Sendable {
    /// The user's last assigned seq (0: nothing ever stored).
    public var seq: UInt64
    public var unread: UInt64
    /// The read cursor.
    public var read: UInt64
    /// The oldest seq still kept, 0 when the inbox is empty: a client with `last_seq + 1 < firstKept` lost some.
    public var firstKept: UInt64
    /// Whether another node holds a session of the user (each such node was told about this one).
    public var remote: Bool
    /// Messages after the client's `last_seq`, oldest first, at most the limit (none when it gave no `last_seq`).
    public var messages: [StoredMessage]

    public init(seq: UInt64, unread: UInt64, read: UInt64, firstKept: UInt64, remote: Bool = false, messages: [StoredMessage]) {
        self.seq = seq
        self.unread = unread
        self.read = read
        self.firstKept = firstKept
        self.remote = remote
        self.messages = messages
    }
}

/// `session.lua`: register a device's session on this node (at AUTH) and fetch what it missed.
public struct SessionCall: ScriptCall {
    public static var script: Script { Scripts.session }

    public var uid: String
    public var device: String
    public var node: String
    public var platform: String
    /// Now, unix seconds: the session's `since`, and the expiry test.
    public var nowSeconds: UInt64
    /// Seconds the user's session hash lives unless refreshed, at least 1.
    public var ttl: Int
    /// The client's `last_seq`; nil when it gave none (then no messages are returned).
    public var lastSeq: UInt64?
    /// Most messages returned.
    public var limit: Int
    /// With `presence.events`: the stream a user's first session anywhere is appended to
    /// (``RedisKeys/presenceStream(forUser:cluster:)``).
    public var presenceStream: String?

    public init(
        uid: String, device: String, node: String, platform: String, nowSeconds: UInt64, ttl: Int, lastSeq: UInt64?,
        limit: Int, presenceStream: String? = nil
    ) {
        self.presenceStream = presenceStream
        self.uid = uid
        self.device = device
        self.node = node
        self.platform = platform
        self.nowSeconds = nowSeconds
        self.ttl = ttl
        self.lastSeq = lastSeq
        self.limit = limit
    }

    /// Its 3 KEYS and 8 ARGV fields in a `session.lua` call.
    func append(keys: inout [[UInt8]], args: inout [[UInt8]]) {
        keys.append(Array(RedisKeys.inbox(uid).utf8))
        keys.append(Array(RedisKeys.meta(uid).utf8))
        keys.append(Array(RedisKeys.sessions(uid).utf8))
        args.append(Array(device.utf8))
        args.append(Array(node.utf8))
        args.append(Array(platform.utf8))
        args.append(decimal(nowSeconds))
        args.append(decimal(ttl))
        args.append(lastSeq.map(decimal) ?? Array("-1".utf8))
        args.append(decimal(limit))
        args.append(Array(uid.utf8))
    }

    /// The Redis Cluster slot of the user's keys (`{u:<uid>}`).
    public var slot: UInt16 { RedisSlot.of(key: RedisKeys.meta(uid)) }

    public var keys: [[UInt8]] { SessionBatchCall(self).keys }
    public var args: [[UInt8]] { SessionBatchCall(self).args }
    public var evalsha: [[UInt8]] { SessionBatchCall(self).evalsha }
    public var eval: [[UInt8]] { SessionBatchCall(self).eval }

    /// The reply of a call of one device: its one entry.
    public static func decode(_ reply: RedisValue) throws -> SessionResult {
        let entries = try SessionBatchCall.decode(reply)
        guard entries.count == 1 else {
            throw ScriptError.unexpectedReply(script: script.name, "expected 1 entry, got \(entries.count)", reply: reply)
        }
        return try entries[0].get()
    }

    /// `{seq, unread, read, first_kept, remote, element…}`.
    static func decodeEntry(_ reply: RedisValue) throws -> SessionResult {
        let reader = try ReplyReader(script.name, reply)
        guard reader.count >= 5 else { throw reader.unexpected("expected {seq, unread, read, first_kept, remote, …}") }
        return SessionResult(
            seq: try reader.count(0, "seq"), unread: try reader.count(1, "unread"), read: try reader.count(2, "read"),
            firstKept: try reader.count(3, "first_kept"), remote: try reader.count(4, "remote") != 0,
            messages: try reader.messages(from: 5))
    }
}

/// `session.lua` for several devices at once (the AUTHs of one loop iteration): one script call instead of one per
/// device. Each device keeps its own result: a device whose keys Redis refuses fails alone.
public struct SessionBatchCall: EncodedBatchCall {
    public typealias Item = SessionCall
    public typealias Entry = SessionResult
    public static var script: Script { Scripts.session }

    public var items: [SessionCall]

    public init(_ items: [SessionCall]) {
        precondition(!items.isEmpty, "SessionBatchCall of no device")
        self.items = items
    }

    public init(_ item: SessionCall) { self.init([item]) }

    public var encoded: (keys: [[UInt8]], args: [[UInt8]]) {
        var keys: [[UInt8]] = []
        keys.reserveCapacity(items.count * 3)
        var args: [[UInt8]] = [decimal(items.count)]
        args.reserveCapacity(1 + items.count * 8)
        for item in items { item.append(keys: &keys, args: &args) }
        if let stream = items[0].presenceStream { keys.append(Array(stream.utf8)) }
        return (keys, args)
    }

    /// One presence stream per call (every item of a call shares its slot on a cluster, and the setting).
    public static func canShare(_ item: SessionCall, with first: SessionCall) -> Bool {
        item.presenceStream == first.presenceStream
    }

    public static func slot(of item: SessionCall) -> UInt16 { item.slot }

    /// One entry per device, in order.
    public static func decode(_ reply: RedisValue) throws -> [Result<SessionResult, ScriptError>] {
        try decodeEntries(reply, SessionCall.decodeEntry)
    }
}
