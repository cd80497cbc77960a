/// What `read.lua` returns.
public struct ReadResult: Equatable, Sendable {
    public var unread: UInt64
    /// The read cursor after the call.
    public var read: UInt64

    public init(unread: UInt64, read: UInt64) {
        self.unread = unread
        self.read = read
    }
}

/// `read.lua`: the user has read up to `seq` (READ, `POST /v1/users/{uid}/read`).
public struct ReadCall: ScriptCall {
    public static var script: Script { Scripts.read }

    public var uid: String
    public var seq: UInt64

    public init(uid: String, seq: UInt64) {
        self.uid = uid
        self.seq = seq
    }

    public var keys: [[UInt8]] { [RedisKeys.inbox(uid), RedisKeys.meta(uid)].map { Array($0.utf8) } }
    public var args: [[UInt8]] { [decimal(seq)] }

    /// `{unread, read}`.
    public static func decode(_ reply: RedisValue) throws -> ReadResult {
        let reader = try ReplyReader(script.name, reply)
        guard reader.count == 2 else { throw reader.unexpected("expected {unread, read}") }
        return ReadResult(unread: try reader.count(0, "unread"), read: try reader.count(1, "read"))
    }
}
