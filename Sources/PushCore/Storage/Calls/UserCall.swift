/// What `user.lua` returns (`GET /v1/users/{uid}`).
public struct UserResult: Equatable, Sendable {
    /// The last assigned seq.
    public var seq: UInt64
    public var unread: UInt64
    /// The read cursor.
    public var read: UInt64
    /// Messages in the inbox (some may have expired and not been popped yet).
    public var kept: UInt64
    /// The user's sessions, in Redis's hash order.
    public var sessions: [DeviceSession]

    public init(seq: UInt64, unread: UInt64, read: UInt64, kept: UInt64, sessions: [DeviceSession]) {
        self.seq = seq
        self.unread = unread
        self.read = read
        self.kept = kept
        self.sessions = sessions
    }
}

/// `user.lua`: one user's counters and sessions.
public struct UserCall: ScriptCall {
    public static var script: Script { Scripts.user }

    public var uid: String

    public init(uid: String) {
        self.uid = uid
    }

    public var keys: [[UInt8]] {
        [RedisKeys.meta(uid), RedisKeys.sessions(uid), RedisKeys.inbox(uid)].map { Array($0.utf8) }
    }
    public var args: [[UInt8]] { [] }

    /// `{seq, unread, read, kept, key, value, key, value, …}`.
    public static func decode(_ reply: RedisValue) throws -> UserResult {
        let reader = try ReplyReader(script.name, reply)
        guard reader.count >= 4, reader.count % 2 == 0 else {
            throw reader.unexpected("expected {seq, unread, read, kept, key, value, …}")
        }
        var sessions: [DeviceSession] = []
        for index in stride(from: 4, to: reader.count, by: 2) {
            let key = try reader.bytes(index, "session key")
            let value = try reader.bytes(index + 1, "session value")
            guard let session = DeviceSession(key: String(decoding: key, as: UTF8.self), value: value) else {
                throw reader.unexpected("session value at \(index + 1) is not <node>|<platform>|<since>")
            }
            sessions.append(session)
        }
        return UserResult(
            seq: try reader.count(0, "seq"), unread: try reader.count(1, "unread"), read: try reader.count(2, "read"),
            kept: try reader.count(3, "kept"), sessions: sessions)
    }
}
