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
