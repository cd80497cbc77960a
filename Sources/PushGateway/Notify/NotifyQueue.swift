import Logging
import PushCore
import PushPosix

/// A notifier's side of the notification streams (SPEC §10): reads them as consumer `consumer` of group ``group``,
/// hands each entry to `deliver`, and settles it by the provider's answer: XACK when it was delivered, the device's
/// token removed when the provider calls it invalid, another attempt after a backoff with jitter, or the dead-letter
/// stream (`pg:notify:dead`) after `notify.max_attempts` or a refusal for good. Entries a dead notifier left pending
/// are claimed (XAUTOCLAIM) once idle for `notify.claim_after`: at-least-once delivery. A retry waits at most half
/// of that, so an entry a live notifier still retries is never claimed.
///
/// On one Redis server it reads `pg:notify` with a blocking XREADGROUP on a connection of its own. On a Redis
/// Cluster the store script appends to the user's slot's `pg:notify:{<tag>}` (one command cannot read streams of
/// several slots) and publishes the stream's name on `pg:notify:ring`: the queue reads a stream when it rings, every
/// stream it knows each claim round (a ring missed while its subscription was down), and learns the streams from
/// the rings and from a `SCAN` of every master at start and each ``discoverInterval``.
final class NotifyQueue {
    typealias Deliver = (NotificationEntry, @escaping (ProviderAnswer) -> Void) -> Void

    static let group = "pushgw-notify"
    /// Entries being delivered at most; the reader waits for some to finish beyond that.
    static let maxInFlight = 1_000
    /// How often a cluster's masters are scanned for notification streams.
    static let discoverInterval = 60.0

    /// One entry of one stream.
    private struct Pending: Hashable {
        let stream: String
        let id: String
    }

    /// A cluster's stream, as this notifier knows it.
    private struct StreamState {
        var groupReady = false
        var reading = false
        /// Rang (or swept) while it was being read: read again once that read is answered.
        var again = false
    }

    private let loop: EventLoop
    private let logger: Logger
    private let consumer: String
    private let commands: RedisCommands
    /// One server: the blocking reader's connection (its XREADGROUP holds it while it waits).
    private let reader: RedisClient?
    /// A cluster: the subscription to `pg:notify:ring`, on one seed at a time.
    private var ring: RedisClient?
    private let ringSeeds: [RedisURL]
    private var ringSeed = 0
    private var ringDownSince: Double?
    private let policy: RetryPolicy
    /// `notify.claim_after` in milliseconds.
    private let claimIdleMillis: Int
    /// Half of it: the longest a retry waits.
    private let maxRetryWait: Double
    private let deliver: Deliver
    private var generator = SystemRandomNumberGenerator()
    /// Entries being delivered or waiting for a retry: a claim of one of them is skipped.
    private var inFlight: Set<Pending> = []
    /// One server's stream.
    private let stream: String
    private var reading = false
    private var groupReady = false
    /// A cluster's streams.
    private var streams: [String: StreamState] = [:]
    private var deferred: Set<String> = []
    private var lastDiscovery = -Double.infinity
    private let delays: LoopDelays
    private var claimTimer: LoopTimer?
    private var stopped = false

    /// Figures per provider, for metrics.
    private(set) var stats: [PushProvider: NotifyStats] = [:]

    private var onCluster: Bool { reader == nil }
    /// Where the queue's commands go (for its figures).
    var redis: RedisCommands { commands }

    /// `redis`: the configuration's Redis (`redis.cluster` when set, else `redis.url`).
    init(
        loop: EventLoop, redis: GatewayConfiguration.Redis, consumer: String, policy: RetryPolicy, claimAfter: Double,
        logger: Logger, stream: String = RedisKeys.notifyStream, deliver: @escaping Deliver
    ) {
        self.loop = loop
        delays = LoopDelays(loop: loop)
        self.logger = logger
        self.stream = stream
        self.consumer = consumer
        claimIdleMillis = max(1, Int(claimAfter * 1000))
        maxRetryWait = max(0.1, claimAfter / 2)
        self.policy = RetryPolicy(
            base: min(policy.base, maxRetryWait), cap: max(min(policy.base, maxRetryWait), min(policy.cap, maxRetryWait)),
            maxAttempts: policy.maxAttempts)
        self.deliver = deliver
        if redis.cluster.isEmpty {
            // The reader's XREADGROUP blocks up to 2 s: its command timeout is longer.
            let reader = RedisClient(loop: loop, url: redis.url, name: "notify-read", logger: logger, commandTimeout: 10)
            let client = RedisClient(loop: loop, url: redis.url, name: "notify", logger: logger)
            self.reader = reader
            commands = .server(client)
            ringSeeds = []
            client.onReady = { [unowned self] in self.createGroup() }
            reader.onReady = { [unowned self] in self.readNext() }
        } else {
            let cluster = RedisClusterClient(loop: loop, seeds: redis.cluster, logger: logger)
            reader = nil
            commands = .cluster(cluster)
            ringSeeds = redis.cluster.map { RedisURL(host: $0.host, port: $0.port) }
            cluster.onMasterReady = { [unowned self] node, client in self.discover(on: client, node: node) }
            ring = makeRing()
        }
    }

    func start() {
        commands.start()
        reader?.start()
        ring?.start()
        let timer = LoopTimer(loop: loop) { [unowned self] in self.everyRound() }
        let every = min(5, max(0.5, Double(claimIdleMillis) / 1000))
        timer.start(after: every, repeat: every)
        claimTimer = timer
    }

    func stop() {
        stopped = true
        claimTimer?.stop()
        delays.cancelAll()
        reader?.stop()
        ring?.stop()
        commands.stop()
    }

    private func send(_ args: [[UInt8]], key: String, _ completion: @escaping RedisClient.Completion = { _ in }) {
        commands.send(args, key: Array(key.utf8), completion)
    }

    /// The claim round: claims on every stream; on a cluster also a read of every stream known, the subscription
    /// moved to the next seed when it has been down for 2 s, and the masters scanned when that is due.
    private func everyRound() {
        if onCluster {
            watchRing()
            if Posix.monotonicSeconds() - lastDiscovery >= Self.discoverInterval, case .cluster(let cluster) = commands {
                for client in cluster.masterConnections where client.isReady { discover(on: client, node: nil) }
            }
            for name in streams.keys { read(name) }
            for name in streams.keys { claim(name) }
        } else {
            claim(stream)
        }
    }

    // MARK: - Reading one server's stream

    /// The group, from the stream's first entry (entries queued before any notifier ran are delivered too).
    private func createGroup() {
        send(Self.command("XGROUP", "CREATE", stream, Self.group, "0", "MKSTREAM"), key: stream) { [unowned self] result in
            switch result {
            case .success(.error(let text)) where !text.hasPrefix("BUSYGROUP"):
                self.logger.error("XGROUP CREATE failed", metadata: ["stream": "\(self.stream)", "reply": "\(text)"])
            case .success:
                self.groupReady = true
                self.readNext()
            case .failure:
                break  // the connection's own reconnect runs this again
            }
        }
    }

    private func readNext() {
        guard let reader else { return readAllStreams() }
        // Refilled in batches, once half the entries in flight are settled: not one XREADGROUP per settled entry.
        guard !stopped, groupReady, !reading, reader.isReady, inFlight.count <= Self.maxInFlight / 2 else { return }
        reading = true
        let count = String(min(100, Self.maxInFlight - inFlight.count))
        reader.send(
            Self.command("XREADGROUP", "GROUP", Self.group, consumer, "COUNT", count, "BLOCK", "2000", "STREAMS", stream, ">")
        ) { [unowned self] result in
            self.reading = false
            if case .success(.error(let text)) = result {
                if text.hasPrefix("NOGROUP") {
                    // The stream was deleted (FLUSHALL, a new Redis): make the group again.
                    self.groupReady = false
                    self.createGroup()
                } else {
                    // Another refusal (a key of the wrong type, say): not read again in a busy loop.
                    self.refused(text)
                }
                return
            }
            if case .success(let reply) = result { self.received(Self.entries(inStreamsReply: reply, stream: self.stream)) }
            self.readNext()
        }
    }

    private func refused(_ text: String) {
        logger.error("XREADGROUP refused", metadata: ["reply": "\(text)"])
        delays.after(1) { [weak self] in self?.readNext() }
    }

    // MARK: - Reading a cluster's streams

    private func makeRing() -> RedisClient {
        let client = RedisClient(loop: loop, url: ringSeeds[ringSeed], name: "notify-ring", logger: logger)
        client.subscribe(channels: [Array(RedisKeys.notifyRing.utf8)]) { [unowned self] _, message in
            self.read(String(decoding: message, as: UTF8.self))
        }
        // Whatever rang while it was down is read now.
        client.onSubscribed = { [unowned self] in for name in self.streams.keys { self.read(name) } }
        return client
    }

    /// A subscription down for 2 s moves to the next seed (as the gateway's node channel does).
    private func watchRing() {
        guard let current = ring, ringSeeds.count > 1 else { return }
        if current.isReady {
            ringDownSince = nil
        } else if let since = ringDownSince {
            if Posix.monotonicSeconds() - since >= 2 {
                current.stop()
                ringSeed = (ringSeed + 1) % ringSeeds.count
                ringDownSince = nil
                ring = makeRing()
                ring?.start()
            }
        } else {
            ringDownSince = Posix.monotonicSeconds()
        }
    }

    /// `SCAN` of one master (all of them at start, each ready master again every ``discoverInterval``) for the
    /// notification streams in its slots.
    private func discover(on client: RedisClient, node: ClusterNode?, cursor: String = "0") {
        if cursor == "0" { lastDiscovery = Posix.monotonicSeconds() }
        client.send(
            Self.command("SCAN", cursor, "MATCH", RedisKeys.notifyStreamPattern, "TYPE", "stream", "COUNT", "1000")
        ) { [weak self] result in
            guard let self, !self.stopped, case .success(.array(let parts)) = result, parts.count == 2,
                case .string(let next) = parts[0]
            else { return }
            for name in Self.strings(parts[1]) { self.read(String(decoding: name, as: UTF8.self)) }
            let nextCursor = String(decoding: next, as: UTF8.self)
            if nextCursor != "0" { self.discover(on: client, node: node, cursor: nextCursor) }
        }
    }

    /// Streams left unread while too many entries were in flight, read once half of those are settled.
    private func readAllStreams() {
        guard inFlight.count <= Self.maxInFlight / 2, !deferred.isEmpty else { return }
        let names = deferred
        deferred.removeAll()
        for name in names { read(name) }
    }

    /// Reads what `name` holds for this group (without blocking), making the group first, and again while a read
    /// returns a full batch or the stream rang meanwhile. A name that is not a notification stream is ignored.
    private func read(_ name: String) {
        guard !stopped, name.hasPrefix("pg:notify:{"), name.hasSuffix("}") else { return }
        var state = streams[name, default: StreamState()]
        defer { streams[name] = state }
        guard !state.reading else { return state.again = true }
        guard inFlight.count <= Self.maxInFlight / 2 else {
            deferred.insert(name)
            return
        }
        state.reading = true
        state.again = false
        guard state.groupReady else {
            send(Self.command("XGROUP", "CREATE", name, Self.group, "0", "MKSTREAM"), key: name) { [unowned self] result in
                self.streams[name]?.reading = false
                switch result {
                case .success(.error(let text)) where !text.hasPrefix("BUSYGROUP"):
                    self.logger.error("XGROUP CREATE failed", metadata: ["stream": "\(name)", "reply": "\(text)"])
                case .success:
                    self.streams[name]?.groupReady = true
                    self.read(name)
                case .failure:
                    break  // read again by the next ring or round
                }
            }
            return
        }
        let count = min(100, Self.maxInFlight - inFlight.count)
        send(
            Self.command("XREADGROUP", "GROUP", Self.group, consumer, "COUNT", String(count), "STREAMS", name, ">"),
            key: name
        ) { [unowned self] result in
            self.streams[name]?.reading = false
            var again = self.streams[name]?.again ?? false
            switch result {
            case .success(.error(let text)):
                guard text.hasPrefix("NOGROUP") else {
                    return self.logger.error("XREADGROUP refused", metadata: ["stream": "\(name)", "reply": "\(text)"])
                }
                // The stream was deleted: make the group again.
                self.streams[name]?.groupReady = false
                again = true
            case .success(let reply):
                let entries = Self.entries(inStreamsReply: reply, stream: name)
                self.received(entries)
                again = again || entries.count == count
            case .failure:
                return
            }
            if again { self.read(name) }
        }
    }

    // MARK: - Claiming

    /// Every 5 s (or `claim_after`, when shorter): entries of `name` pending for longer than `claim_after` under any
    /// consumer (a notifier that died) become this one's.
    private func claim(_ name: String) {
        guard commands.isAvailable, onCluster ? streams[name]?.groupReady == true : groupReady else { return }
        send(
            Self.command("XAUTOCLAIM", name, Self.group, consumer, String(claimIdleMillis), "0-0", "COUNT", "100"),
            key: name
        ) { [unowned self] result in
            guard case .success(.array(let parts)) = result, parts.count >= 2 else { return }
            let claimed = Self.entries(parts[1], stream: name).filter { !self.inFlight.contains($0.pending) }
            if !claimed.isEmpty {
                self.logger.notice("claimed notifications left by another notifier", metadata: ["count": "\(claimed.count)"])
            }
            self.received(claimed)
        }
    }

    private func received(_ entries: [(pending: Pending, fields: RedisValue)]) {
        for (pending, fields) in entries {
            do {
                let entry = try NotificationEntry(fields: fields)
                inFlight.insert(pending)
                attempt(entry, pending)
            } catch {
                logger.warning(
                    "unreadable notification, to the dead-letter stream",
                    metadata: ["stream": "\(pending.stream)", "id": "\(pending.id)", "error": "\(error)"])
                deadLetter(pending, fields: Self.strings(fields), reason: "\(error)")
            }
        }
    }

    // MARK: - Settling

    private func attempt(_ entry: NotificationEntry, _ pending: Pending) {
        deliver(entry) { [weak self] answer in self?.settle(entry, pending, answer) }
    }

    private func settle(_ entry: NotificationEntry, _ pending: Pending, _ answer: ProviderAnswer) {
        var figures = stats[entry.provider, default: NotifyStats()]
        defer { stats[entry.provider] = figures }
        // Every notifier's figures in one hash, for /metrics.
        let result = switch answer.outcome {
        case .delivered: "sent"
        case .invalidToken: "invalid"
        case .retry: entry.attempts + 1 < policy.maxAttempts ? "retried" : "failed"
        case .failed: "failed"
        }
        send(Self.command("HINCRBY", RedisKeys.notifyStats, "\(entry.provider.rawValue):\(result)", "1"), key: RedisKeys.notifyStats)
        switch answer.outcome {
        case .delivered:
            figures.sent += 1
            acknowledge(pending)
        case .invalidToken:
            figures.invalidTokens += 1
            logger.info(
                "push token invalid, removed",
                metadata: ["user": "\(entry.user)", "device": "\(entry.device)", "reason": "\(answer.reason ?? "-")"])
            // Only if it is still the token that was refused: the app may have sent a new one since.
            send(Self.removeTokenCommand(entry), key: RedisKeys.pushTokens(entry.user))
            acknowledge(pending)
        case .retry(let after):
            let attempts = entry.attempts + 1
            guard let delay = policy.delay(afterAttempt: attempts, retryAfter: after.map { min($0, maxRetryWait) }, using: &generator)
            else {
                figures.failed += 1
                return deadLetter(pending, fields: entry.encodedFields, reason: "gave up after \(attempts) attempts: \(answer.reason ?? "no answer")")
            }
            figures.retried += 1
            // Its idle time starts again, so no other notifier claims an entry this one is still retrying (XCLAIM of
            // its own entry with a minimum idle time of 0 resets it).
            send(Self.command("XCLAIM", pending.stream, Self.group, consumer, "0", pending.id, "JUSTID"), key: pending.stream)
            var next = entry
            next.attempts = attempts
            delays.after(delay) { [weak self] in self?.attempt(next, pending) }
        case .failed(let reason):
            figures.failed += 1
            deadLetter(pending, fields: entry.encodedFields, reason: reason)
        }
    }

    private func acknowledge(_ pending: Pending) {
        send(Self.command("XACK", pending.stream, Self.group, pending.id), key: pending.stream)
        inFlight.remove(pending)
        readNext()
    }

    private func deadLetter(_ pending: Pending, fields: [[UInt8]], reason: String) {
        let add = Self.command("XADD", RedisKeys.notifyDeadLetters, "MAXLEN", "~", "100000", "*")
            + fields + [Array("reason".utf8), Array(reason.utf8), Array("id".utf8), Array(pending.id.utf8)]
        send(add, key: RedisKeys.notifyDeadLetters)
        acknowledge(pending)
    }

    // MARK: - Replies and commands

    /// Seconds since the oldest pending entry was queued, from `XPENDING <stream> <group>`'s summary
    /// (`[count, smallest id, greatest id, consumers]`; an id starts with its unix milliseconds); 0 when none.
    static func oldestPendingAge(_ reply: Result<RedisValue, RedisError>) -> Double {
        guard case .success(.array(let parts)) = reply, parts.count >= 2, case .string(let first) = parts[1],
            let millis = UInt64(String(decoding: first.prefix { $0 != UInt8(ascii: "-") }, as: UTF8.self))
        else { return 0 }
        return max(0, Double(Posix.wallMillis()) - Double(millis)) / 1000
    }

    private static func command(_ parts: String...) -> [[UInt8]] { parts.map { Array($0.utf8) } }

    /// `HDEL` of the device's token when it is still the one refused (a small script: compare and delete).
    private static func removeTokenCommand(_ entry: NotificationEntry) -> [[UInt8]] {
        let script = """
            local stored = redis.call('HGET', KEYS[1], ARGV[1])
            if stored and string.find(stored, ARGV[2], 1, true) then return redis.call('HDEL', KEYS[1], ARGV[1]) end
            return 0
            """
        var writer = JSONWriter()
        writer.object { $0.field("token", entry.token) }
        // `{"token":"…"}` without its braces: how PushToken.json spells the field.
        let field = String(writer.string.dropFirst().dropLast())
        return command("EVAL", script, "1", RedisKeys.pushTokens(entry.user), entry.device, field)
    }

    /// XREADGROUP's `[[stream, [[id, fields], …]]]` (null when the block timed out) for one stream read.
    private static func entries(inStreamsReply reply: RedisValue, stream: String) -> [(pending: Pending, fields: RedisValue)] {
        guard case .array(let streams) = reply else { return [] }
        return streams.flatMap { item -> [(pending: Pending, fields: RedisValue)] in
            guard case .array(let parts) = item, parts.count == 2 else { return [] }
            return entries(parts[1], stream: stream)
        }
    }

    /// `[[id, fields], …]`; an entry deleted while pending has null fields (kept: it goes to the dead letters).
    private static func entries(_ list: RedisValue, stream: String) -> [(pending: Pending, fields: RedisValue)] {
        guard case .array(let items) = list else { return [] }
        return items.compactMap { item in
            guard case .array(let pair) = item, pair.count == 2, case .string(let id) = pair[0] else { return nil }
            return (Pending(stream: stream, id: String(decoding: id, as: UTF8.self)), pair[1])
        }
    }

    private static func strings(_ value: RedisValue) -> [[UInt8]] {
        guard case .array(let items) = value else { return [] }
        return items.compactMap { if case .string(let bytes) = $0 { bytes } else { nil } }
    }
}

/// One provider's figures since the notifier started.
struct NotifyStats {
    var sent = 0
    var failed = 0
    var retried = 0
    var invalidTokens = 0
}
