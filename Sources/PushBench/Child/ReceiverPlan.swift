import Glibc

/// What one receivers process does, as the coordinator planned it (its command line).
struct ReceiverPlan {
    var host: String
    var port: Int
    /// Global index of this process's first user: connection i is user `<prefix><first + i>`.
    var first: Int
    var count: Int
    var userPrefix: String
    /// Source addresses; connection i binds to `sources[(first + i) % sources.count]`.
    var sources: [in_addr]
    /// Connections between connect() and AUTH_REPLY at once.
    var inFlight: Int
    /// New connections per second; 0: as fast as `inFlight` allows.
    var rate: Double
    /// Seconds between heartbeats of one connection.
    var heartbeat: Double
    /// Sent in AUTH when set (replay: 0, every stored message).
    var lastSeq: Int?
    /// Replay: a connection is complete once it got the seq its AUTH_REPLY gave as `last_seq`.
    var replay: Bool
    /// Seconds between ACKs of the newest stored seq (0: no ACKs).
    var ackInterval: Double
    /// Fan-out: broadcast messages are numbered 0..<messages by their `k`.
    var messages: Int
    var connectTimeout: Double
    /// Seconds after which the process quits whatever happens.
    var lifetime: Double
}
