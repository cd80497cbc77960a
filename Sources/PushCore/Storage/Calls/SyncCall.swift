/// What `sync.lua` returns.
public struct SyncResult: Equatable, Sendable {
    /// The user's last assigned seq.
    public var seq: UInt64
    /// Kept, unexpired messages after the requested seq, oldest first, at most the limit.
    public var messages: [StoredMessage]

    public init(seq: UInt64, messages: [StoredMessage]) {
        self.seq = seq
        self.messages = messages
    }
}

/// `sync.lua`: the stored messages after a seq (SYNC, the messages API, filling a gap in delivery).
public struct SyncCall: ScriptCall {
    public static var script: Script { Scripts.sync }

    public var uid: String
    /// Messages with a seq above this one.
    public var after: UInt64
    /// At most this many.
    public var limit: Int
    /// Now, unix seconds: expired messages are left out.
    public var nowSeconds: UInt64

    public init(uid: String, after: UInt64, limit: Int, nowSeconds: UInt64) {
        self.uid = uid
        self.after = after
        self.limit = limit
        self.nowSeconds = nowSeconds
    }

    public var keys: [[UInt8]] { [RedisKeys.inbox(uid), RedisKeys.meta(uid)].map { Array($0.utf8) } }
    public var args: [[UInt8]] { [decimal(after), decimal(limit), decimal(nowSeconds)] }

    /// `{seq, element…}`.
    public static func decode(_ reply: RedisValue) throws -> SyncResult {
        let reader = try ReplyReader(script.name, reply)
        return SyncResult(seq: try reader.count(0, "seq"), messages: try reader.messages(from: 1))
    }
}
