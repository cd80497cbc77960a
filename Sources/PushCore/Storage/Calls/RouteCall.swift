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
