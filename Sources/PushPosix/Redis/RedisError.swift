/// Why a command sent through `RedisClient` got no reply. A Redis error reply (`-ERR…`, `NOSCRIPT…`) is not one
/// of these: it is a reply, `RedisValue.error`.
///
/// A struct over a private enum, so cases can be added without breaking callers' switches; compare with `==`.
public struct RedisError: Error, Equatable, CustomStringConvertible {
    private enum Code: Equatable {
        case notConnected, timeout, disconnected, overloaded
    }

    private let code: Code

    /// The connection is down (or still being set up): the command was not sent. Fails fast, so a push can answer
    /// 503 at once instead of waiting for the reconnect.
    public static let notConnected = RedisError(code: .notConnected)
    /// Commands were waiting and no reply at all came within the command timeout; the connection was dropped, so
    /// the command may or may not have run.
    public static let timeout = RedisError(code: .timeout)
    /// The connection was lost (or the client stopped) while the command was in flight: it may or may not have run.
    public static let disconnected = RedisError(code: .disconnected)
    /// `maxInFlight` commands are already waiting for their replies: the command was not sent.
    public static let overloaded = RedisError(code: .overloaded)

    /// Whether the command may have run: it was sent and no reply came. `.notConnected` and `.overloaded` were
    /// never sent.
    public var mayHaveRun: Bool { code == .timeout || code == .disconnected }

    public var description: String {
        switch code {
        case .notConnected: "Redis not connected"
        case .timeout: "Redis command timed out"
        case .disconnected: "Redis connection lost with the command in flight"
        case .overloaded: "too many Redis commands in flight"
        }
    }
}
