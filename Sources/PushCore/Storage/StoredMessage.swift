/// One stored message: an element of a user's inbox list (`pg:{u:<uid>}:inbox`).
///
/// Encoded as `<seq>:<op>:<ts_ms>:<expire_at>:` in decimal, followed by the payload bytes unchanged, so the
/// payload may hold anything (`:`, newlines, binary). `store.lua` writes this encoding; `sync.lua` and
/// `session.lua` read `expire_at` from it.
public struct StoredMessage: Equatable, Sendable {
    /// The user's message seq, 1, 2, 3…: also the frame seq it is delivered with.
    public var seq: UInt64
    /// The application operation (≥ 1000 for backend pushes).
    public var op: UInt32
    /// When it was stored, unix milliseconds.
    public var timestampMillis: UInt64
    /// Unix seconds at which it expires (it is expired when `expiresAt <= now`); 0 means it never expires.
    public var expiresAt: UInt64
    /// The backend's payload bytes, delivered unchanged.
    public var payload: [UInt8]

    public init(seq: UInt64, op: UInt32, timestampMillis: UInt64, expiresAt: UInt64, payload: [UInt8]) {
        self.seq = seq
        self.op = op
        self.timestampMillis = timestampMillis
        self.expiresAt = expiresAt
        self.payload = payload
    }

    /// Decodes an inbox element; nil when the four decimal fields are not there.
    public init?(encoded: some Collection<UInt8>) {
        var rest = encoded[...]
        guard let seq = rest.popDecimalField(as: UInt64.self),
            let op = rest.popDecimalField(as: UInt32.self),
            let timestamp = rest.popDecimalField(as: UInt64.self),
            let expiresAt = rest.popDecimalField(as: UInt64.self)
        else { return nil }
        self.init(seq: seq, op: op, timestampMillis: timestamp, expiresAt: expiresAt, payload: Array(rest))
    }

    /// The inbox element: `<seq>:<op>:<ts_ms>:<expire_at>:<payload>`.
    public var encoded: [UInt8] {
        var bytes = Array("\(seq):\(op):\(timestampMillis):\(expiresAt):".utf8)
        bytes.reserveCapacity(bytes.count + payload.count)
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// Whether it has expired at unix second `now` (the scripts' rule: `expire_at <= now`, 0 never).
    public func isExpired(atSeconds now: UInt64) -> Bool {
        expiresAt != 0 && expiresAt <= now
    }
}

/// A message on a node's channel (`pg:node:<id>`): a stored message for a user with a session on that node.
///
/// Encoded as `<uid>\n<stored message encoded>`, as `store.lua` publishes it. Uids cannot hold a newline.
public struct NodeDelivery: Equatable, Sendable {
    /// The user the message was stored for.
    public var uid: String
    /// The message, with its seq.
    public var message: StoredMessage

    public init(uid: String, message: StoredMessage) {
        self.uid = uid
        self.message = message
    }

    /// Decodes a pub/sub message payload; nil when it is not a delivery.
    public init?(payload: some Collection<UInt8>) {
        guard let newline = payload.firstIndex(of: UInt8(ascii: "\n")),
            let message = StoredMessage(encoded: payload[payload.index(after: newline)...])
        else { return nil }
        self.init(uid: String(decoding: payload[..<newline], as: UTF8.self), message: message)
    }

    /// The pub/sub message payload.
    public var encoded: [UInt8] {
        Array(uid.utf8) + [UInt8(ascii: "\n")] + message.encoded
    }
}

extension Collection where Element == UInt8, SubSequence == Self {
    /// Removes `[0-9]+:` from the front and returns its value; nil (and nothing removed) when it is not there or
    /// does not fit in `T`.
    fileprivate mutating func popDecimalField<T: FixedWidthInteger & UnsignedInteger>(as _: T.Type) -> T? {
        guard let colon = firstIndex(of: UInt8(ascii: ":")), colon != startIndex else { return nil }
        var value: T = 0
        for byte in self[..<colon] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.addingReportingOverflow(T(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = next
        }
        self = self[index(after: colon)...]
        return value
    }
}
