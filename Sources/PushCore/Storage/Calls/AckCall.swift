/// `ack.lua` for one ACK: device `device` has every stored message up to `seq`. Decodes to the device's cursor
/// afterwards. Also an item of an ``AckBatchCall``.
public struct AckCall: ScriptCall, Hashable {
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

    /// The reply of a call of one ACK: its one cursor.
    public static func decode(_ reply: RedisValue) throws -> UInt64 {
        let entries = try AckBatchCall.decode(reply)
        guard entries.count == 1 else {
            throw ScriptError.unexpectedReply(script: script.name, "expected 1 cursor, got \(entries.count)", reply: reply)
        }
        return try entries[0].get()
    }
}

/// `ack.lua` for the ACKs of one loop iteration: one script call for all of them (per Redis Cluster slot).
public struct AckBatchCall: BatchScriptCall {
    public typealias Item = AckCall
    public typealias Entry = UInt64
    public static var script: Script { Scripts.ack }

    public var items: [AckCall]

    public init(_ items: [AckCall]) {
        precondition(!items.isEmpty, "AckBatchCall of no ACK")
        self.items = items
    }

    public var keys: [[UInt8]] { items.map { Array(RedisKeys.meta($0.uid).utf8) } }

    public var args: [[UInt8]] {
        var args: [[UInt8]] = []
        args.reserveCapacity(items.count * 2)
        for item in items {
            args.append(Array(item.device.utf8))
            args.append(decimal(item.seq))
        }
        return args
    }

    public static func slot(of item: AckCall) -> UInt16 { RedisSlot.of(key: RedisKeys.meta(item.uid)) }

    /// One cursor per ACK, in order.
    public static func decode(_ reply: RedisValue) throws -> [Result<UInt64, ScriptError>] {
        try decodeEntries(reply) { try ReplyReader.scalar(script.name, $0, "cursor") }
    }
}
