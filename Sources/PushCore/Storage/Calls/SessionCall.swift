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

    public init(
        uid: String, device: String, node: String, platform: String, nowSeconds: UInt64, ttl: Int, lastSeq: UInt64?,
        limit: Int
    ) {
        self.uid = uid
        self.device = device
        self.node = node
        self.platform = platform
        self.nowSeconds = nowSeconds
        self.ttl = ttl
        self.lastSeq = lastSeq
        self.limit = limit
    }

    public var keys: [[UInt8]] {
        [RedisKeys.inbox(uid), RedisKeys.meta(uid), RedisKeys.sessions(uid)].map { Array($0.utf8) }
    }

    public var args: [[UInt8]] {
        [
            Array(device.utf8), Array(node.utf8), Array(platform.utf8), decimal(nowSeconds), decimal(ttl),
            lastSeq.map(decimal) ?? Array("-1".utf8), decimal(limit), Array(uid.utf8),
        ]
    }

    /// `{seq, unread, read, first_kept, remote, element…}`.
    public static func decode(_ reply: RedisValue) throws -> SessionResult {
        let reader = try ReplyReader(script.name, reply)
        guard reader.count >= 5 else { throw reader.unexpected("expected {seq, unread, read, first_kept, remote, …}") }
        return SessionResult(
            seq: try reader.count(0, "seq"), unread: try reader.count(1, "unread"), read: try reader.count(2, "read"),
            firstKept: try reader.count(3, "first_kept"), remote: try reader.count(4, "remote") != 0,
            messages: try reader.messages(from: 5))
    }
}
