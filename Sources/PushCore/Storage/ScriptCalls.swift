/// One run of one script: its KEYS and ARGV, built from typed values, and the decoder of its reply.
///
/// The Redis client sends ``evalsha`` (after SCRIPT LOAD of ``Scripts/all`` at connect), falls back to ``eval`` on
/// a NOSCRIPT error (``ScriptError/isNoScript``), and hands the reply to ``decode(_:)``.
public protocol ScriptCall: Sendable {
    /// What ``decode(_:)`` makes of the reply.
    associatedtype Result: Sendable
    /// The script this call runs.
    static var script: Script { get }
    /// `KEYS`, in the order the script's header comment gives.
    var keys: [[UInt8]] { get }
    /// `ARGV`, integers as decimal strings.
    var args: [[UInt8]] { get }
    /// Decodes the reply; throws ``ScriptError`` for an error reply or a reply of the wrong shape (never traps).
    static func decode(_ reply: RedisValue) throws -> Result
}

extension ScriptCall {
    /// The EVALSHA command for this call.
    public var evalsha: [[UInt8]] { Self.script.evalsha(keys: keys, args: args) }
    /// The EVAL command for this call (sends the whole source: after NOSCRIPT only).
    public var eval: [[UInt8]] { Self.script.eval(keys: keys, args: args) }
}

/// Why a script call gave no result: Redis answered with an error, or with a reply this code does not understand.
public struct ScriptError: Error, Equatable, Sendable, CustomStringConvertible {
    private enum Kind: Equatable, Sendable {
        case server
        case unexpectedReply
    }

    private let kind: Kind
    /// The script's name.
    public let script: String
    /// Redis's error text, or what was wrong with the reply.
    public let message: String

    private init(_ kind: Kind, script: String, message: String) {
        self.kind = kind
        self.script = script
        self.message = message
    }

    /// Redis answered with an error reply (a bad argument, OOM, a Lua error, NOSCRIPT…).
    public static func server(script: String, message: String) -> Self {
        .init(.server, script: script, message: message)
    }

    /// The reply does not have the shape the script returns: scripts and binary are out of step, or a bug.
    public static func unexpectedReply(script: String, _ detail: String, reply: RedisValue) -> Self {
        var shown = reply.description
        if shown.count > 200 { shown = shown.prefix(200) + "…" }
        return .init(.unexpectedReply, script: script, message: "\(detail); reply: \(shown)")
    }

    /// Whether Redis does not have the script cached: send ``ScriptCall/eval`` (or SCRIPT LOAD) and retry.
    public var isNoScript: Bool { kind == .server && message.hasPrefix("NOSCRIPT") }

    /// Whether this is an error reply from Redis (as opposed to a reply of the wrong shape).
    public var isServerError: Bool { kind == .server }

    public var description: String {
        switch kind {
        case .server: "Redis error from script \(script): \(message)"
        case .unexpectedReply: "unexpected reply from script \(script): \(message)"
        }
    }
}

/// A device's session as `pg:{u:<uid>}:sess` holds it: field = device key, value = `<node>|<platform>|<since>`.
public struct DeviceSession: Equatable, Sendable {
    /// The device key.
    public var key: String
    /// The node id holding its connection.
    public var node: String
    /// `ios`, `android`, `web`…
    public var platform: String
    /// When it authenticated, unix seconds.
    public var since: UInt64

    public init(key: String, node: String, platform: String, since: UInt64) {
        self.key = key
        self.node = node
        self.platform = platform
        self.since = since
    }

    /// Parses a hash value; the node ends at the first `|`, the time starts after the last, the platform is what
    /// lies between (so a platform may hold `|`, a node id may not).
    public init?(key: String, value: some BidirectionalCollection<UInt8>) {
        guard let first = value.firstIndex(of: UInt8(ascii: "|")),
            let last = value.lastIndex(of: UInt8(ascii: "|")), first != last,
            let since = Int64(decimal: value[value.index(after: last)...]), since >= 0
        else { return nil }
        self.init(
            key: key,
            node: String(decoding: value[..<first], as: UTF8.self),
            platform: String(decoding: value[value.index(after: first)..<last], as: UTF8.self),
            since: UInt64(since))
    }

    /// The hash value, as `session.lua` writes it.
    public var value: String { "\(node)|\(platform)|\(since)" }
}

// MARK: - store

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

/// `store.lua`: store one message for one user and publish it to the other nodes holding the user's sessions.
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
    public var idempotencyID: String?
    /// ``bodyHash(_:)`` of the push body; only used with an idempotency key.
    public var bodyHash: String
    /// Seconds the idempotency record is kept, at least 1.
    public var idemTTL: Int
    /// The idempotency key was generated by this gateway for this push: no earlier record can exist, so the
    /// script only writes one (for a retry after an unknown outcome) and skips the lookup.
    public var freshID: Bool

    public init(
        uid: String, op: UInt32, payload: [UInt8], nowMillis: UInt64, ttl: Int, inboxMax: Int, inboxTTL: Int,
        node: String, idempotency: (id: String, bodyHash: String)? = nil, idemTTL: Int = 86_400, freshID: Bool = false
    ) {
        self.uid = uid
        self.op = op
        self.payload = payload
        self.nowMillis = nowMillis
        self.ttl = ttl
        self.inboxMax = inboxMax
        self.inboxTTL = inboxTTL
        self.node = node
        self.idempotencyID = idempotency?.id
        self.bodyHash = idempotency?.bodyHash ?? ""
        self.idemTTL = idemTTL
        self.freshID = freshID
    }

    public var keys: [[UInt8]] {
        var keys = [RedisKeys.inbox(uid), RedisKeys.meta(uid), RedisKeys.sessions(uid), RedisKeys.polls(uid)]
            .map { Array($0.utf8) }
        if let id = idempotencyID { keys.append(Array(RedisKeys.idempotency(id).utf8)) }
        return keys
    }

    public var args: [[UInt8]] {
        [
            decimal(UInt64(op)), payload, decimal(nowMillis), decimal(ttl), decimal(inboxMax), decimal(inboxTTL),
            Array(node.utf8), Array(uid.utf8), idempotencyID == nil ? [] : Array(bodyHash.utf8), decimal(idemTTL),
            freshID ? [UInt8(ascii: "1")] : [UInt8(ascii: "0")],
        ]
    }

    /// `{seq, 0, unread, published, devices, element}` stored, `{seq, 1, unread}` duplicate, `{-1}` conflict.
    public static func decode(_ reply: RedisValue) throws -> StoreResult {
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

// MARK: - session

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

// MARK: - sync

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

// MARK: - ack

/// `ack.lua`: device `device` has every stored message up to `seq`. Decodes to the device's cursor afterwards.
public struct AckCall: ScriptCall {
    public static var script: Script { Scripts.ack }

    public var uid: String
    public var device: String
    public var seq: UInt64

    public init(uid: String, device: String, seq: UInt64) {
        self.uid = uid
        self.device = device
        self.seq = seq
    }

    public var keys: [[UInt8]] { [Array(RedisKeys.meta(uid).utf8)] }
    public var args: [[UInt8]] { [Array(device.utf8), decimal(seq)] }

    /// An integer: the cursor.
    public static func decode(_ reply: RedisValue) throws -> UInt64 {
        try ReplyReader.scalar(script.name, reply, "cursor")
    }
}

// MARK: - read

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

// MARK: - leave

/// `leave.lua`: a device's connection closed on `node`. Decodes to whether the session was removed (false when
/// the device already reconnected to another node, or had no session).
public struct LeaveCall: ScriptCall {
    public static var script: Script { Scripts.leave }

    public var uid: String
    public var device: String
    public var node: String

    public init(uid: String, device: String, node: String) {
        self.uid = uid
        self.device = device
        self.node = node
    }

    public var keys: [[UInt8]] { [Array(RedisKeys.sessions(uid).utf8)] }
    public var args: [[UInt8]] { [Array(device.utf8), Array(node.utf8)] }

    /// `1` removed, `0` not.
    public static func decode(_ reply: RedisValue) throws -> Bool {
        switch try ReplyReader.scalar(script.name, reply, "removed") as UInt64 {
        case 0: return false
        case 1: return true
        case let other: throw ScriptError.unexpectedReply(script: script.name, "removed is \(other)", reply: reply)
        }
    }
}

// MARK: - route

/// What `route.lua` did: how many of the user's sessions matched, and how many other nodes it told.
public struct RouteResult: Equatable, Sendable {
    public var devices: Int
    public var published: Int
    public init(devices: Int, published: Int) {
        self.devices = devices
        self.published = published
    }
}

/// `route.lua`: publish `message` (a ``NodeMessage``) to every other node holding a session of `uid` (or only
/// the session of `device`).
public struct RouteCall: ScriptCall {
    public static var script: Script { Scripts.route }

    public var uid: String
    public var node: String
    public var message: NodeMessage
    public var device: String?

    public init(uid: String, node: String, message: NodeMessage, device: String? = nil) {
        self.uid = uid
        self.node = node
        self.message = message
        self.device = device
    }

    public var keys: [[UInt8]] { [Array(RedisKeys.sessions(uid).utf8)] }
    public var args: [[UInt8]] { [Array(node.utf8), message.encoded, Array((device ?? "").utf8)] }

    /// `{devices, published}`.
    public static func decode(_ reply: RedisValue) throws -> RouteResult {
        let reader = try ReplyReader(script.name, reply)
        guard reader.count == 2 else { throw reader.unexpected("expected {devices, published}") }
        return RouteResult(devices: Int(try reader.count(0, "devices")), published: Int(try reader.count(1, "published")))
    }
}

// MARK: - user

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

// MARK: - helpers

/// An integer as the decimal ARGV string the scripts expect.
private func decimal(_ value: UInt64) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendDecimal(value)
    return bytes
}

private func decimal(_ value: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendDecimal(value)
    return bytes
}

/// Reads the elements of an array reply, turning anything unexpected into a ``ScriptError``.
private struct ReplyReader {
    let script: String
    let reply: RedisValue
    let elements: [RedisValue]

    /// Throws the server's error for an error reply, and for anything but an array.
    init(_ script: String, _ reply: RedisValue) throws {
        self.script = script
        self.reply = reply
        switch reply {
        case .array(let elements): self.elements = elements
        case .error(let message): throw ScriptError.server(script: script, message: message)
        default: throw ScriptError.unexpectedReply(script: script, "expected an array", reply: reply)
        }
    }

    /// A reply that is one non-negative integer.
    static func scalar(_ script: String, _ reply: RedisValue, _ name: String) throws -> UInt64 {
        switch reply {
        case .integer(let value) where value >= 0: return UInt64(value)
        case .error(let message): throw ScriptError.server(script: script, message: message)
        default:
            throw ScriptError.unexpectedReply(script: script, "expected \(name), a non-negative integer", reply: reply)
        }
    }

    var count: Int { elements.count }

    func unexpected(_ detail: String) -> ScriptError {
        ScriptError.unexpectedReply(script: script, detail, reply: reply)
    }

    func int(_ index: Int, _ name: String) throws -> Int64 {
        guard index < elements.count else { throw unexpected("\(name) (element \(index)) is missing") }
        guard case .integer(let value) = elements[index] else {
            throw unexpected("\(name) (element \(index)) is not an integer")
        }
        return value
    }

    /// A counter or seq: a non-negative integer.
    func count(_ index: Int, _ name: String) throws -> UInt64 {
        let value = try int(index, name)
        guard value >= 0 else { throw unexpected("\(name) (element \(index)) is negative") }
        return UInt64(value)
    }

    func bytes(_ index: Int, _ name: String) throws -> [UInt8] {
        guard index < elements.count, case .string(let bytes) = elements[index] else {
            throw unexpected("\(name) (element \(index)) is not a bulk string")
        }
        return bytes
    }

    /// The stored messages from element `index` on.
    func messages(from index: Int) throws -> [StoredMessage] {
        guard index <= elements.count else { throw unexpected("fewer than \(index) elements") }
        return try (index..<elements.count).map { index in
            guard let message = StoredMessage(encoded: try bytes(index, "message")) else {
                throw unexpected("element \(index) is not a stored message")
            }
            return message
        }
    }
}
