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

    private enum State {
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
    public private(set) var errors = 0
    /// Error replies (`-ERR…`, `NOSCRIPT…`); these are replies, not in `errors`.
    public private(set) var errorReplies = 0
    /// Times the connection became ready again after being down.
    public private(set) var reconnects = 0
    /// Every round-trip time since start, bucketed (`pushgw_redis_latency_seconds`).
    public private(set) var latencyHistogram = Histogram()

    public var isReady: Bool { state == .ready }
    /// Commands (including the client's own handshake and heartbeat) waiting for their reply.
    public var inFlight: Int { sendTimes.count }

    private let loop: EventLoop
    private let logger: Logger
    private var state = State.idle
    private var context: UnsafeMutablePointer<redisAsyncContext>?
    /// Counts connection attempts, so that a stale handshake reply cannot act on a newer connection.
    private var generation = 0
    /// When the current connect or handshake started (monotonic seconds).
    private var phaseStartedAt = 0.0
    private var lastSentAt = 0.0
    /// When the last reply (or pub/sub message) arrived on the current connection.
    private var lastReplyAt = 0.0
    private var sendTimes = SendTimes()
    private var latencies = LatencyRing(capacity: 1024)

    /// The context this client freed last and the error its pending callbacks get (hiredis calls them with a NULL
    /// reply while it frees the context, possibly after `drop` returned when that happens inside a callback).
    private var droppedContext: UnsafeMutableRawPointer?
    private var dropError = RedisError.disconnected

    /// Reconnect backoff: the next delay is uniformly random in 0...min(1 s, 100 ms × 2^attempt). The ceiling is
    /// low so that a Redis that comes back is used (and every connection caught up) within a second; an attempt
    /// is one connect per connection, cheap for Redis even from many workers.
    private var backoffAttempt = 0
    private static let initialBackoff = 0.1
    private static let maxBackoff = 1.0
    /// libev keeps a pointer to the watcher: allocated once, never moved.
    private let reconnectTimer = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
    /// Since when the connection has been down (nil while up or before the first attempt), for the log line.
    private var downSince: Double?

    private var subscriptions: [[UInt8]: MessageHandler] = [:]
    /// Confirmations still to come for the subscriptions sent at the last ready.
    private var subscribeConfirmationsPending = 0
    /// Failures found before sending, delivered before the loop sleeps so that no callback runs inside `send`.
    private var pendingFailures: [(Completion, RedisError)] = []

    /// Scratch space for `redisAsyncCommandArgv`: the arguments' bytes back to back, their pointers and lengths.
    /// hiredis copies the command into its output buffer during the call, so one reusable buffer serves every
    /// command.
    private var argumentBytes: UnsafeMutablePointer<UInt8>
    private var argumentBytesCapacity = 4096
    private var argumentPointers: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private var argumentLengths: UnsafeMutablePointer<Int>
    private var argumentCapacity = 16

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
        guard !present.isEmpty, state == .ready, let context else { return }
        guard write(context, [Array("UNSUBSCRIBE".utf8)] + present, callback: redisClientMessage, privdata: nil) else {
            return
        }
        let now = Posix.monotonicSeconds()
        for _ in present { sendTimes.append(now) }
        lastSentAt = now
    }

    /// The `p`th percentile (0–100) of the last 1,024 round-trip times in seconds, or nil before the first reply.
    public func latencyPercentile(_ p: Double) -> Double? {
        latencies.percentile(p)
    }

    // MARK: - Connection lifecycle

    private func connect() {
        guard state == .waiting else { return }
        generation += 1
        phaseStartedAt = Posix.monotonicSeconds()
        // Note: hiredis resolves a host name with a blocking getaddrinfo; an address literal does not block.
        guard let context = redisAsyncConnect(url.host, Int32(url.port)) else {
            return lost(reason: "redisAsyncConnect: out of memory")
        }
        if context.pointee.err != 0 {
            let reason = Self.errorText(context)
            redisAsyncFree(context)
            return lost(reason: reason)
        }
        context.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        // `c` is the first member of redisAsyncContext. Keepalive finds a silently dead peer even while idle.
        _ = redisEnableKeepAlive(UnsafeMutableRawPointer(context).assumingMemoryBound(to: redisContext.self))
        _ = redisLibevAttach(loop.loop, context)
        _ = redisAsyncSetConnectCallback(context, redisClientConnected)
        _ = redisAsyncSetDisconnectCallback(context, redisClientDisconnected)
        self.context = context
        state = .connecting
    }

    /// hiredis's connect callback. Must not free the context: hiredis keeps using it when this returns.
    fileprivate func connected(_ ac: UnsafeRawPointer, status: Int32) {
        guard let context, UnsafeRawPointer(context) == ac else { return }
        guard status == REDIS_OK else {
            // hiredis frees the context when this returns.
            self.context = nil
            return lost(reason: Self.errorText(context))
        }
        handshake(context)
    }

    /// AUTH and SELECT when the URL has them, then PING, pipelined; ready when the last reply is in and none was an
    /// error.
    private func handshake(_ context: UnsafeMutablePointer<redisAsyncContext>) {
        state = .handshaking
        phaseStartedAt = Posix.monotonicSeconds()
        var steps: [(name: String, args: [[UInt8]])] = []
        if let password = url.password {
            // `AUTH password` for the default user, `AUTH username password` for an ACL user (Redis 6+).
            let credentials = (url.username.map { [Array($0.utf8)] } ?? []) + [Array(password.utf8)]
            steps.append(("AUTH", [Array("AUTH".utf8)] + credentials))
        }
        if url.db != 0 {
            steps.append(("SELECT", [Array("SELECT".utf8), Array(String(url.db).utf8)]))
        }
        steps.append(("PING", [Array("PING".utf8)]))
        let generation = self.generation
        for (index, step) in steps.enumerated() {
            let isLast = index == steps.count - 1
            let queued = enqueue(context, step.args) { [weak self] result in
                guard let self, self.generation == generation, self.state == .handshaking else { return }
                switch result {
                case .success(.error(let message)):
                    self.drop(reason: "\(step.name) failed: \(message)", error: .disconnected)
                case .success:
                    if isLast { self.becameReady() }
                case .failure:
                    break  // The connection is gone and whoever noticed has scheduled the reconnect.
                }
            }
            // Cannot happen on a fresh connection; if it does, the handshake deadline in `tick` retries.
            guard queued else { return }
        }
    }

    private func becameReady() {
        state = .ready
        backoffAttempt = 0
        if let since = downSince {
            downSince = nil
            reconnects += 1
            let seconds = ((Posix.monotonicSeconds() - since) * 1000).rounded() / 1000
            logger.info("Redis connection back", metadata: ["url": "\(url)", "down_seconds": "\(seconds)"])
        } else {
            logger.info("Redis connected", metadata: ["url": "\(url)"])
        }
        subscribeConfirmationsPending = 0
        if let context, !subscriptions.isEmpty {
            subscribeConfirmationsPending = subscriptions.count
            sendSubscribe(context, Array(subscriptions.keys))
        }
        onReady?()
    }

    /// hiredis's disconnect callback: the context is being freed. Nothing to do if this client freed it itself or
    /// already learned of the loss from a reply callback.
    fileprivate func disconnected(_ ac: UnsafeRawPointer, status: Int32) {
        guard let context, UnsafeRawPointer(context) == ac else { return }
        self.context = nil
        lost(reason: status == REDIS_OK ? "connection closed" : Self.errorText(context))
    }

    /// Closes the connection this client decided to give up on (timeout, handshake error). Every command in flight
    /// fails with `error`.
    private func drop(reason: String, error: RedisError) {
        guard let context else { return }
        self.context = nil
        lost(reason: reason)
        freeContext(context, error: error)
    }

    /// Frees a context that `self.context` no longer points to. Inside a hiredis callback hiredis defers the free
    /// until the callback returns; outside, the pending callbacks run (with NULL) before this returns.
    private func freeContext(_ context: UnsafeMutablePointer<redisAsyncContext>, error: RedisError) {
        droppedContext = UnsafeMutableRawPointer(context)
        dropError = error
        redisAsyncFree(context)
    }

    /// The connection is gone (`context` is already nil): forget what was in flight, log once, reconnect later.
    private func lost(reason: String) {
        let wasReady = state == .ready
        sendTimes.removeAll()
        if downSince == nil {
            downSince = Posix.monotonicSeconds()
            logger.warning("Redis connection down", metadata: ["url": "\(url)", "reason": "\(reason)"])
        } else {
            // Every failed attempt while down: useful when debugging, noise otherwise.
            logger.debug("Redis reconnect attempt failed", metadata: ["reason": "\(reason)"])
        }
        if state != .stopped {
            state = .waiting
            scheduleReconnect()
        }
        if wasReady { onDown?() }
    }

    private func scheduleReconnect() {
        let ceiling = min(Self.maxBackoff, Self.initialBackoff * Double(1 << min(backoffAttempt, 16)))
        backoffAttempt += 1
        ev_timer_stop(loop.loop, reconnectTimer)
        clibev_timer_init(reconnectTimer, redisClientReconnectTimer, Double.random(in: 0...ceiling), 0)
        ev_timer_start(loop.loop, reconnectTimer)
    }

    fileprivate func reconnectTimerFired() {
        connect()
    }

    /// Every loop tick (0.1 s): abandon a stalled connect, handshake or command; keep an idle connection checked.
    private func tick() {
        let now = Posix.monotonicSeconds()
        switch state {
        case .connecting, .handshaking:
            if now - phaseStartedAt > commandTimeout {
                let phase = state == .connecting ? "connect" : "handshake"
                drop(reason: "\(phase) timed out after \(commandTimeout) s", error: .timeout)
            }
        case .ready:
            if let oldest = sendTimes.oldest, now - max(oldest, lastReplyAt) > commandTimeout {
                drop(reason: "no reply for \(commandTimeout) s, \(sendTimes.count) in flight", error: .timeout)
            } else if sendTimes.count == 0, now - lastSentAt >= heartbeatInterval, let context {
                heartbeat(context)
            }
        case .idle, .waiting, .stopped:
            break
        }
    }

    /// A command whose reply proves the connection alive. A subscribed hiredis context would lose a PING's reply
    /// (it comes back as an array it cannot route), so a subscriber re-subscribes to a channel it already has,
    /// which Redis confirms and changes nothing.
    private func heartbeat(_ context: UnsafeMutablePointer<redisAsyncContext>) {
        if let channel = subscriptions.keys.first {
            sendSubscribe(context, [channel])
        } else {
            _ = enqueue(context, [Array("PING".utf8)]) { _ in }
        }
    }

    // MARK: - Commands

    /// Hands one command to hiredis with its completion as privdata (retained here, released by the reply
    /// callback, which hiredis calls exactly once: with the reply, or with NULL when the context is freed).
    private func enqueue(
        _ context: UnsafeMutablePointer<redisAsyncContext>, _ args: [[UInt8]], _ completion: @escaping Completion
    ) -> Bool {
        let command = Unmanaged.passRetained(PendingCommand(completion))
        guard write(context, args, callback: redisClientReply, privdata: command.toOpaque()) else {
            command.release()
            return false
        }
        let now = Posix.monotonicSeconds()
        sendTimes.append(now)
        lastSentAt = now
        return true
    }

    /// SUBSCRIBE with one persistent callback for the channels; each channel's confirmation counts as a reply in
    /// flight, so a stalled subscriber times out like any connection.
    private func sendSubscribe(_ context: UnsafeMutablePointer<redisAsyncContext>, _ channels: [[UInt8]]) {
        guard !channels.isEmpty else { return }
        guard write(context, [Array("SUBSCRIBE".utf8)] + channels, callback: redisClientMessage, privdata: nil) else {
            return
        }
        let now = Posix.monotonicSeconds()
        for _ in channels { sendTimes.append(now) }
        lastSentAt = now
    }

    /// Copies the arguments into the scratch buffer and calls `redisAsyncCommandArgv`, which copies them again
    /// into hiredis's output buffer.
    private func write(
        _ context: UnsafeMutablePointer<redisAsyncContext>, _ args: [[UInt8]], callback: RedisReplyFunction,
        privdata: UnsafeMutableRawPointer?
    ) -> Bool {
        reserveArguments(count: args.count, bytes: args.reduce(0) { $0 + $1.count })
        var offset = 0
        for (index, argument) in args.enumerated() {
            argument.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { (argumentBytes + offset).update(from: base, count: source.count) }
            }
            argumentPointers[index] = UnsafeRawPointer(argumentBytes + offset).assumingMemoryBound(to: CChar.self)
            argumentLengths[index] = argument.count
            offset += argument.count
        }
        return redisAsyncCommandArgv(context, callback, privdata, Int32(args.count), argumentPointers, argumentLengths)
            == REDIS_OK
    }

    private func reserveArguments(count: Int, bytes: Int) {
        if count > argumentCapacity {
            argumentCapacity = max(count, argumentCapacity * 2)
            argumentPointers.deallocate()
            argumentLengths.deallocate()
            argumentPointers = .allocate(capacity: argumentCapacity)
            argumentLengths = .allocate(capacity: argumentCapacity)
        }
        if bytes > argumentBytesCapacity {
            argumentBytesCapacity = max(bytes, argumentBytesCapacity * 2)
            argumentBytes.deallocate()
            argumentBytes = .allocate(capacity: argumentBytesCapacity)
        }
    }

    private func failLater(_ completion: @escaping Completion, _ error: RedisError) {
        errors += 1
        pendingFailures.append((completion, error))
    }

    private func deliverPendingFailures() {
        // A completion may send again and fail again: deliver those too before the loop sleeps.
        while !pendingFailures.isEmpty {
            let failures = pendingFailures
            pendingFailures.removeAll()
            for (completion, error) in failures { completion(.failure(error)) }
        }
    }

    // MARK: - Replies (called by the C callbacks below)

    fileprivate func replied(
        _ ac: UnsafeMutablePointer<redisAsyncContext>, _ reply: UnsafeMutableRawPointer?, _ completion: Completion
    ) {
        guard let reply else {
            errors += 1
            return completion(.failure(lostReplyError(ac)))
        }
        if context == ac, let sentAt = sendTimes.popOldest() {
            lastReplyAt = Posix.monotonicSeconds()
            let seconds = lastReplyAt - sentAt
            latencies.record(seconds)
            latencyHistogram.observe(seconds)
        }
        let value = RedisValue(reply: reply.assumingMemoryBound(to: redisReply.self))
        if case .error = value { errorReplies += 1 }
        completion(.success(value))
    }

    /// What a command gets when hiredis calls its callback with NULL, i.e. while it frees the context.
    private func lostReplyError(_ ac: UnsafeMutablePointer<redisAsyncContext>) -> RedisError {
        if context == ac {
            // hiredis is freeing the context after an I/O error, and this is the first callback it runs.
            context = nil
            lost(reason: Self.errorText(ac))
            return .disconnected
        }
        return UnsafeMutableRawPointer(ac) == droppedContext ? dropError : .disconnected
    }

    /// A pub/sub reply: a message, a subscribe confirmation, or NULL when the context is freed.
    fileprivate func received(_ ac: UnsafeMutablePointer<redisAsyncContext>, _ reply: UnsafeMutableRawPointer?) {
        guard let reply else {
            if context == ac {
                context = nil
                lost(reason: Self.errorText(ac))
            }
            return
        }
        if context == ac { lastReplyAt = Posix.monotonicSeconds() }
        let message = reply.assumingMemoryBound(to: redisReply.self).pointee
        guard message.type == REDIS_REPLY_ARRAY, message.elements >= 3, let parts = message.element,
            let kind = parts[0], let channel = parts[1], let payload = parts[2]
        else { return }
        if kind.pointee.equals("message") {
            let name = channel.pointee.bytes
            subscriptions[name]?(name, payload.pointee.bytes)
        } else if kind.pointee.equals("subscribe") || kind.pointee.equals("unsubscribe"), context == ac,
            let sentAt = sendTimes.popOldest()
        {
            latencies.record(Posix.monotonicSeconds() - sentAt)
            if kind.pointee.equals("subscribe"), subscribeConfirmationsPending > 0 {
                subscribeConfirmationsPending -= 1
                if subscribeConfirmationsPending == 0 { onSubscribed?() }
            }
        }
    }

    // MARK: - Helpers

    private static func errorText(_ context: UnsafeMutablePointer<redisAsyncContext>) -> String {
        guard context.pointee.err != 0, let text = context.pointee.errstr else { return "connection closed" }
        return String(cString: text)
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

/// A command's completion, boxed so it can travel through hiredis as privdata.
private final class PendingCommand {
    let completion: RedisClient.Completion
    init(_ completion: @escaping RedisClient.Completion) { self.completion = completion }
}

// hiredis calls these C functions; the client comes back from the context's `data` (nil once it is deinitialized).

private typealias RedisReplyFunction = @convention(c) (
    UnsafeMutablePointer<redisAsyncContext>?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?
) -> Void

private func client(_ data: UnsafeMutableRawPointer?) -> RedisClient? {
    data.map { Unmanaged<RedisClient>.fromOpaque($0).takeUnretainedValue() }
}

private func redisClientReply(
    _ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    let command = Unmanaged<PendingCommand>.fromOpaque(privdata!).takeRetainedValue()
    guard let ac, let client = client(ac.pointee.data) else {
        let value = reply.map { RedisValue(reply: $0.assumingMemoryBound(to: redisReply.self)) }
        return command.completion(value.map { .success($0) } ?? .failure(.disconnected))
    }
    client.replied(ac, reply, command.completion)
}

private func redisClientMessage(
    _ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let ac, let client = client(ac.pointee.data) else { return }
    client.received(ac, reply)
}

private func redisClientConnected(_ ac: UnsafePointer<redisAsyncContext>?, _ status: Int32) {
    guard let ac, let client = client(ac.pointee.data) else { return }
    client.connected(UnsafeRawPointer(ac), status: status)
}

private func redisClientDisconnected(_ ac: UnsafePointer<redisAsyncContext>?, _ status: Int32) {
    guard let ac, let client = client(ac.pointee.data) else { return }
    client.disconnected(UnsafeRawPointer(ac), status: status)
}

private func redisClientReconnectTimer(
    _ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_timer>?, _ events: Int32
) {
    client(watcher?.pointee.data)?.reconnectTimerFired()
}

// MARK: - Reply conversion

extension RedisValue {
    /// Copies a hiredis reply (RESP2) into a value; hiredis frees the reply when the callback returns.
    fileprivate init(reply: UnsafePointer<redisReply>) {
        let reply = reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            self = .string(reply.bytes)
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: reply.bytes, as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: reply.bytes, as: UTF8.self))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                guard let element = reply.element?[index] else { continue }
                elements.append(RedisValue(reply: element))
            }
            self = .array(elements)
        default:
            self = .error("unknown hiredis reply type \(reply.type)")
        }
    }
}

extension redisReply {
    /// The string's bytes (bulk, status or error).
    fileprivate var bytes: [UInt8] {
        guard let str, len > 0 else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: str, count: len))
    }

    /// Whether this is a bulk or status string equal to the ASCII `text`, without copying it.
    fileprivate func equals(_ text: StaticString) -> Bool {
        guard type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS, len == text.utf8CodeUnitCount, let str
        else { return false }
        return memcmp(str, text.utf8Start, len) == 0
    }
}
