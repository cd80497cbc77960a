/// `leave.lua`: a device's connection closed on `node`. Decodes to whether the session was removed (false when
/// the device already reconnected to another node, or had no session).
public struct LeaveCall: ScriptCall {
    public static var script: Script { Scripts.leave }

    public var uid: String
    public var device: String
    public var node: String
    /// With `presence.events`: the stream the user's last session leaving is appended to.
    public var presenceStream: String?

    public init(uid: String, device: String, node: String, presenceStream: String? = nil) {
        self.uid = uid
        self.device = device
        self.node = node
        self.presenceStream = presenceStream
    }

    public var keys: [[UInt8]] {
        [Array(RedisKeys.sessions(uid).utf8)] + (presenceStream.map { [Array($0.utf8)] } ?? [])
    }
    public var args: [[UInt8]] { [Array(device.utf8), Array(node.utf8), Array(uid.utf8)] }

    /// `1` removed, `0` not.
    public static func decode(_ reply: RedisValue) throws -> Bool {
        switch try ReplyReader.scalar(script.name, reply, "removed") as UInt64 {
        case 0: return false
        case 1: return true
        case let other: throw ScriptError.unexpectedReply(script: script.name, "removed is \(other)", reply: reply)
        }
    }
}
