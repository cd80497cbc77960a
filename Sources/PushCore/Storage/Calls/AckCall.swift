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
