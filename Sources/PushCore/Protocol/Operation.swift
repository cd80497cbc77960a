/// A frame's operation number (SPEC §2). Numbers below 1000 are control operations; 1000 and above are
/// application operations chosen by the backend and delivered unchanged.
public struct Operation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// c→s, empty body.
    public static let heartbeat = Operation(2)
    /// s→c, 4 bytes: online count of the client's room, else 0.
    public static let heartbeatReply = Operation(3)
    /// goim's SEND_MSG, c→s: answered as goim's comet answers it, with op 4, the same seq and an empty body.
    public static let sendMessage = Operation(4)
    /// s→c, JSON `{"reason":…,"reconnect":…,"after_ms":…}`, then close.
    public static let disconnect = Operation(6)
    /// c→s, JSON: the first frame of every connection.
    public static let auth = Operation(7)
    /// s→c, JSON `{"code":0,"key":…,"heartbeat":S,"unread":n,"last_seq":m}`.
    public static let authReply = Operation(8)
    /// s→c, whole frames concatenated.
    public static let raw = Operation(9)
    public static let changeRoom = Operation(12)
    public static let changeRoomReply = Operation(13)
    public static let subOps = Operation(14)
    public static let subOpsReply = Operation(15)
    public static let unsubOps = Operation(16)
    public static let unsubOpsReply = Operation(17)
    public static let ack = Operation(18)
    public static let sync = Operation(20)
    public static let syncReply = Operation(21)
    public static let read = Operation(22)
    public static let readReply = Operation(23)
    public static let sub = Operation(24)
    public static let subReply = Operation(25)
    public static let unsub = Operation(26)
    public static let unsubReply = Operation(27)
    /// s→c, JSON `{"code":…,"message":…,"op":N}`; fatal codes are followed by a close.
    public static let error = Operation(28)

    /// The first application operation number.
    public static let firstApplication: UInt32 = 1000

    public var isApplication: Bool { rawValue >= Self.firstApplication }

    public var description: String { String(rawValue) }
}
