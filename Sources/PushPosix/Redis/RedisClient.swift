import CHiredis
import CLibev
import Glibc
import Logging
import PushCore

/// One Redis connection on a worker's loop, driven by hiredis's async API through its libev adapter: no blocking
/// call, no thread, no lock. Commands are pipelined (hiredis queues them in its output buffer and writes them in one
/// go when the socket is writable); replies come back in order, each to its own callback.
///
/// The client connects on `start()`, sends `AUTH` and `SELECT` when the URL asks for them, then `PING`, and is
/// ready when all of them succeeded. While it is not ready, `send` fails fast with `.notConnected`. A lost
/// connection, commands waiting while no reply at all came for `commandTimeout` (hiredis 0.14 has no command
/// timeout of its own; a Redis that is busy but answering is not stalled, so a long queue of commands behind a
/// storm does not drop it), or a connect that does not complete in time drops the connection, fails every command in flight, and reconnects with
/// exponential backoff and full jitter (100 ms doubling to 1 s). Each transition is logged once: a warning with the
/// reason when the connection goes down, an info line with how long it was down when it is back.
///
/// A client used for `subscribe` is dedicated to pub/sub: hiredis 0.14 sends a subscribed connection's other
/// replies to the wrong callbacks, so `send` must not be called on it (it traps).
///
/// Single-threaded: everything runs on the loop's thread. Callbacks never run inside `send`: failures found before
/// sending are delivered before the loop next sleeps.
public final class RedisClient {
    public typealias Completion = (Result<RedisValue, RedisError>) -> Void
    /// Receives one published message: the channel and the payload.
    public typealias MessageHandler = (_ channel: [UInt8], _ message: [UInt8]) -> Void

    enum State {
        /// Not started yet.
        case idle
        /// Waiting for the reconnect timer.
        case waiting
        /// TCP connect in progress.
        case connecting
        /// Connected; AUTH / SELECT / PING in flight.
        case handshaking
        case ready
        /// `stop()` was called.
        case stopped
    }

    /// For log lines and metrics: which connection this is (`commands`, `pubsub`).
    public let name: String
    public let url: RedisURL
    /// Seconds a command (or a connect, or the handshake) may wait before the connection is declared stalled.
    public let commandTimeout: Double
    /// Commands in flight beyond which `send` answers `.overloaded` instead of queueing more.
    public let maxInFlight: Int
    /// An idle ready connection sends a `PING` (or, subscribed, re-`SUBSCRIBE`s one channel) this often, so a dead
    /// peer is noticed within about `heartbeatInterval + commandTimeout` even when nothing else is sent.
    public let heartbeatInterval: Double

    /// Called each time the connection becomes ready (first connect and every reconnect), after `SUBSCRIBE` was
    /// re-sent: the storage layer loads its scripts here.
    public var onReady: (() -> Void)?
    /// Called when a ready connection is lost (not on `stop()`, not on failed reconnect attempts).
    public var onDown: (() -> Void)?
    /// A subscribed client: called each time Redis confirmed every subscription sent again when the connection
    /// became ready (first connect and every reconnect). From then on every message published on them arrives.
    public var onSubscribed: (() -> Void)?

    /// Commands accepted by `send` and written to the connection.
    public private(set) var commandsSent = 0
    /// Commands that got no reply: `.notConnected`, `.overloaded`, `.timeout`, `.disconnected`.
    public internal(set) var errors = 0
    /// Error replies (`-ERR…`, `NOSCRIPT…`); these are replies, not in `errors`.
    public internal(set) var errorReplies = 0
    /// Times the connection became ready again after being down.
    public internal(set) var reconnects = 0
    /// Every round-trip time since start, bucketed (`pushgw_redis_latency_seconds`).
    public internal(set) var latencyHistogram = Histogram()

    public var isReady: Bool { state == .ready }
    /// Commands (including the client's own handshake and heartbeat) waiting for their reply.
    public var inFlight: Int { sendTimes.count }

    let loop: EventLoop
    let logger: Logger
    var state = State.idle
    var context: UnsafeMutablePointer<redisAsyncContext>?
    /// Counts connection attempts, so that a stale handshake reply cannot act on a newer connection.
    var generation = 0
    /// When the current connect or handshake started (monotonic seconds).
    var phaseStartedAt = 0.0
    var lastSentAt = 0.0
    /// When the last reply (or pub/sub message) arrived on the current connection.
    var lastReplyAt = 0.0
    /// When the last tick ran, and when the loop last came back from a delay longer than `loopDelayAllowance`
    /// between two ticks (monotonic seconds): the stall check does not count the loop's own delays against Redis.
    var lastTickAt = 0.0
    var loopBackAt = 0.0
    /// A gap between two ticks (0.1 s apart) longer than this is the loop's delay, not Redis's.
    static let loopDelayAllowance = 0.5
    var sendTimes = SendTimes()
    var latencies = LatencyRing(capacity: 1024)

    /// The context this client freed last and the error its pending callbacks get (hiredis calls them with a NULL
    /// reply while it frees the context, possibly after `drop` returned when that happens inside a callback).
    var droppedContext: UnsafeMutableRawPointer?
    var dropError = RedisError.disconnected

    /// Reconnect backoff: the next delay is uniformly random in 0...min(1 s, 100 ms × 2^attempt). The ceiling is
    /// low so that a Redis that comes back is used (and every connection caught up) within a second; an attempt
    /// is one connect per connection, cheap for Redis even from many workers.
    var backoffAttempt = 0
    static let initialBackoff = 0.1
    static let maxBackoff = 1.0
    /// libev keeps a pointer to the watcher: allocated once, never moved.
    let reconnectTimer = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
    /// Since when the connection has been down (nil while up or before the first attempt), for the log line.
    var downSince: Double?

    var subscriptions: [[UInt8]: MessageHandler] = [:]
    /// Confirmations still to come for the subscriptions sent at the last ready.
    var subscribeConfirmationsPending = 0
    /// The channels Redis confirmed on the current connection and not unsubscribed since (``isSubscribed(to:)``).
    var confirmedChannels: Set<[UInt8]> = []
    /// UNSUBSCRIBEs sent per channel and not yet confirmed: a SUBSCRIBE confirmed before one of them ran earlier.
    var unsubscribesInFlight: [[UInt8]: Int] = [:]
    /// Failures found before sending, delivered before the loop sleeps so that no callback runs inside `send`.
    var pendingFailures: [(Completion, RedisError)] = []

    /// Scratch space for `redisAsyncCommandArgv`: the arguments' bytes back to back, their pointers and lengths.
    /// hiredis copies the command into its output buffer during the call, so one reusable buffer serves every
    /// command.
    var argumentBytes: UnsafeMutablePointer<UInt8>
    var argumentBytesCapacity = 4096
    var argumentPointers: UnsafeMutablePointer<UnsafePointer<CChar>?>
    var argumentLengths: UnsafeMutablePointer<Int>
    var argumentCapacity = 16

    public init(
        loop: EventLoop, url: RedisURL, name: String, logger: Logger, commandTimeout: Double = 2.0,
        maxInFlight: Int = 10_000, heartbeatInterval: Double = 1.0
    ) {
        self.loop = loop
        self.url = url
        self.name = name
        self.commandTimeout = commandTimeout
        self.maxInFlight = maxInFlight
        self.heartbeatInterval = heartbeatInterval
        var logger = logger
        logger[metadataKey: "redis"] = "\(name)"
        self.logger = logger
        argumentBytes = .allocate(capacity: argumentBytesCapacity)
        argumentPointers = .allocate(capacity: argumentCapacity)
        argumentLengths = .allocate(capacity: argumentCapacity)

        clibev_timer_init(reconnectTimer, redisClientReconnectTimer, 0, 0)
        reconnectTimer.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        loop.addTick { [weak self] in self?.tick() }
        loop.addBeforeSleep { [weak self] in self?.deliverPendingFailures() }
    }

    deinit {
        ev_timer_stop(loop.loop, reconnectTimer)
        reconnectTimer.deallocate()
        if let context {
            // The callbacks hiredis runs while freeing find no client and just fail their commands.
            context.pointee.data = nil
            redisAsyncFree(context)
        }
        argumentBytes.deallocate()
        argumentPointers.deallocate()
        argumentLengths.deallocate()
    }

    // MARK: - Public API

    /// Connects (in the background: this returns at once). Also restarts a stopped client.
    public func start() {
        guard state == .idle || state == .stopped else { return }
        state = .waiting
        backoffAttempt = 0
        connect()
    }

    /// Closes the connection and stops reconnecting. Commands in flight fail with `.disconnected`; later ones
    /// with `.notConnected`.
    public func stop() {
        guard state != .stopped else { return }
        state = .stopped
        ev_timer_stop(loop.loop, reconnectTimer)
        sendTimes.removeAll()
        if let context {
            self.context = nil
            freeContext(context, error: .disconnected)
        }
        logger.info("Redis client stopped")
    }

    /// Writes the commands sent so far to the socket now, instead of when the loop next polls (after every other
    /// callback of this iteration), so that Redis can work on them while the caller goes on. Only the write: an
    /// error is left in the context, where hiredis finds it at its next write from the loop, as always (it frees
    /// the context then, which must not happen inside a caller's code or a hiredis callback).
    public func writeNow() {
        guard state == .ready, let context else { return }
        var done: Int32 = 0
        _ = redisBufferWrite(UnsafeMutableRawPointer(context).assumingMemoryBound(to: redisContext.self), &done)
    }

    /// Sends one command (binary-safe arguments, the command name first) and calls `completion` with its reply
    /// once, on the loop. A Redis error reply is `.success(.error(message))`; `.failure` means no reply: not
    /// connected, too many in flight, timed out or disconnected (the last two: the command may have run).
    ///
    /// SUBSCRIBE, PSUBSCRIBE, (P)UNSUBSCRIBE and MONITOR are refused (they trap): hiredis answers them with many
    /// replies or none, not one. Use `subscribe(channels:onMessage:)` on a dedicated client.
    public func send(_ args: [[UInt8]], _ completion: @escaping Completion) {
        precondition(!args.isEmpty && !Self.isMultiReplyCommand(args[0]), "RedisClient.send: not a one-reply command")
        precondition(subscriptions.isEmpty, "RedisClient.send on a client dedicated to pub/sub")
        guard state == .ready, let context else { return failLater(completion, .notConnected) }
        guard sendTimes.count < maxInFlight else { return failLater(completion, .overloaded) }
        guard enqueue(context, args, completion) else { return failLater(completion, .notConnected) }
        commandsSent += 1
    }

    /// Subscribes to `channels` and calls `onMessage` for every message published on them, for as long as the
    /// client runs: the subscriptions are sent again after every reconnect (messages published while the
    /// connection was down are lost, as pub/sub always loses them). Call before or after `start()`.
    ///
    /// A client that subscribes must not be used for anything else (see the type's documentation).
    public func subscribe(channels: [[UInt8]], onMessage: @escaping MessageHandler) {
        for channel in channels { subscriptions[channel] = onMessage }
        if state == .ready, let context { sendSubscribe(context, channels) }
    }

    /// Stops listening on `channels` (those not subscribed are ignored).
    public func unsubscribe(channels: [[UInt8]]) {
        let present = channels.filter { subscriptions.removeValue(forKey: $0) != nil }
        for channel in present { confirmedChannels.remove(channel) }
        guard !present.isEmpty, state == .ready, let context else { return }
        guard write(context, [Array("UNSUBSCRIBE".utf8)] + present, callback: redisClientMessage, privdata: nil) else {
            return
        }
        let now = Posix.monotonicSeconds()
        for channel in present {
            sendTimes.append(now)
            unsubscribesInFlight[channel, default: 0] += 1
        }
        lastSentAt = now
    }

    /// Whether every message published on `channel` from now on reaches this client: it is connected, and Redis
    /// confirmed its subscription to the channel on this connection (a SUBSCRIBE still on its way does not count:
    /// a PUBLISH sent on another connection meanwhile may run before it). Pub/sub's publisher can rely on this to
    /// expect its own message back.
    public func isSubscribed(to channel: [UInt8]) -> Bool {
        state == .ready && confirmedChannels.contains(channel)
    }

    /// The `p`th percentile (0–100) of the last 1,024 round-trip times in seconds, or nil before the first reply.
    public func latencyPercentile(_ p: Double) -> Double? {
        latencies.percentile(p)
    }

    /// SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE and MONITOR, in any case.
    private static func isMultiReplyCommand(_ name: [UInt8]) -> Bool {
        guard (7...12).contains(name.count) else { return false }
        let lower = name.map { $0 | 0x20 }
        var rest = lower[...]
        if rest.first == UInt8(ascii: "p") { rest = rest.dropFirst() }
        if rest.starts(with: "un".utf8) { rest = rest.dropFirst(2) }
        return rest.elementsEqual("subscribe".utf8) || lower.elementsEqual("monitor".utf8)
    }
}
