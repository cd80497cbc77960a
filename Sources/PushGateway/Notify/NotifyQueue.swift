import Logging
import PushCore
import PushPosix

/// A notifier's side of the notification stream (SPEC §10): reads `pg:notify` as consumer `consumer` of group
/// ``group``, hands each entry to `deliver`, and settles it by the provider's answer: XACK when it was delivered, the
/// device's token removed when the provider calls it invalid, another attempt after a backoff with jitter, or the
/// dead-letter stream (`pg:notify:dead`) after `notify.max_attempts` or a refusal for good. Entries a dead
/// notifier left pending are claimed (XAUTOCLAIM) once idle for `notify.claim_after`: at-least-once delivery.
/// A retry waits at most half of that, so an entry a live notifier still retries is never claimed.
///
/// Two connections: a blocking XREADGROUP holds one while it waits; XACK and the rest go on the other.
final class NotifyQueue {
    typealias Deliver = (NotificationEntry, @escaping (ProviderAnswer) -> Void) -> Void

    static let group = "pushgw-notify"
    /// Entries being delivered at most; the reader waits for some to finish beyond that.
    static let maxInFlight = 1_000

    private let loop: EventLoop
    private let logger: Logger
    private let stream: String
    private let consumer: String
    private let reader: RedisClient
    private let commands: RedisClient
    private let policy: RetryPolicy
    /// `notify.claim_after` in milliseconds.
    private let claimIdleMillis: Int
    /// Half of it: the longest a retry waits.
    private let maxRetryWait: Double
    private let deliver: Deliver
    private var generator = SystemRandomNumberGenerator()
    /// Stream ids being delivered or waiting for a retry: a claim of one of them is skipped.
    private var inFlight: Set<String> = []
    private var reading = false
    private var groupReady = false
    private let delays: LoopDelays
    private var claimTimer: LoopTimer?
    private var stopped = false

    /// Figures per provider, for metrics.
    private(set) var stats: [PushProvider: NotifyStats] = [:]

    init(
        loop: EventLoop, url: RedisURL, consumer: String, policy: RetryPolicy, claimAfter: Double, logger: Logger,
        stream: String = RedisKeys.notifyStream, deliver: @escaping Deliver
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
        // The reader's XREADGROUP blocks up to 2 s: its command timeout is longer.
        reader = RedisClient(loop: loop, url: url, name: "notify-read", logger: logger, commandTimeout: 10)
        commands = RedisClient(loop: loop, url: url, name: "notify", logger: logger)
        commands.onReady = { [unowned self] in self.createGroup() }
        reader.onReady = { [unowned self] in self.readNext() }
    }

    func start() {
        commands.start()
        reader.start()
        let timer = LoopTimer(loop: loop) { [unowned self] in self.claim() }
        let every = min(5, max(0.5, Double(claimIdleMillis) / 1000))
        timer.start(after: every, repeat: every)
        claimTimer = timer
    }

    func stop() {
        stopped = true
        claimTimer?.stop()
        delays.cancelAll()
        reader.stop()
        commands.stop()
    }

    // MARK: - Reading

    /// The group, from the stream's first entry (entries queued before any notifier ran are delivered too).
    private func createGroup() {
        commands.send(Self.command("XGROUP", "CREATE", stream, Self.group, "0", "MKSTREAM")) { [unowned self] result in
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
        // Refilled in batches, once half the entries in flight are settled: not one XREADGROUP per settled entry.
        guard !stopped, groupReady, !reading, reader.isReady, inFlight.count <= Self.maxInFlight / 2 else { return }
        reading = true
        let count = String(min(100, Self.maxInFlight - inFlight.count))
        reader.send(
            Self.command("XREADGROUP", "GROUP", Self.group, consumer, "COUNT", count, "BLOCK", "2000", "STREAMS", stream, ">")
        ) { [unowned self] result in
            self.reading = false
            if case .success(let reply) = result { self.received(Self.entries(inStreamsReply: reply)) }
            if case .success(.error(let text)) = result {
                if text.hasPrefix("NOGROUP") {
                    // The stream was deleted (FLUSHALL, a new Redis): make the group again.
                    self.groupReady = false
                    self.createGroup()
                } else {
                    // Another refusal (a key of the wrong type, say): not read again in a busy loop.
                    self.logger.error("XREADGROUP refused", metadata: ["reply": "\(text)"])
                    self.delays.after(1) { [weak self] in self?.readNext() }
                }
                return
            }
            self.readNext()
        }
    }

    /// Every 5 s (or `claim_after`, when shorter): entries pending for longer than `claim_after` under any consumer
    /// (a notifier that died) become this one's.
    private func claim() {
        guard groupReady, commands.isReady else { return }
        commands.send(
            Self.command("XAUTOCLAIM", stream, Self.group, consumer, String(claimIdleMillis), "0-0", "COUNT", "100")
        ) { [unowned self] result in
            guard case .success(.array(let parts)) = result, parts.count >= 2 else { return }
            let claimed = Self.entries(parts[1]).filter { !self.inFlight.contains($0.id) }
            if !claimed.isEmpty {
                self.logger.notice("claimed notifications left by another notifier", metadata: ["count": "\(claimed.count)"])
            }
            self.received(claimed)
        }
    }

    private func received(_ entries: [(id: String, fields: RedisValue)]) {
        for (id, fields) in entries {
            do {
                let entry = try NotificationEntry(fields: fields)
                inFlight.insert(id)
                attempt(entry, id: id)
            } catch {
                logger.warning("unreadable notification, to the dead-letter stream", metadata: ["id": "\(id)", "error": "\(error)"])
                deadLetter(id: id, fields: Self.strings(fields), reason: "\(error)")
            }
        }
    }

    // MARK: - Settling

    private func attempt(_ entry: NotificationEntry, id: String) {
        deliver(entry) { [weak self] answer in self?.settle(entry, id: id, answer) }
    }

    private func settle(_ entry: NotificationEntry, id: String, _ answer: ProviderAnswer) {
        var figures = stats[entry.provider, default: NotifyStats()]
        defer { stats[entry.provider] = figures }
        // Every notifier's figures in one hash, for /metrics.
        let result = switch answer.outcome {
        case .delivered: "sent"
        case .invalidToken: "invalid"
        case .retry: entry.attempts + 1 < policy.maxAttempts ? "retried" : "failed"
        case .failed: "failed"
        }
        commands.send(Self.command("HINCRBY", RedisKeys.notifyStats, "\(entry.provider.rawValue):\(result)", "1")) { _ in }
        switch answer.outcome {
        case .delivered:
            figures.sent += 1
            acknowledge(id)
        case .invalidToken:
            figures.invalidTokens += 1
            logger.info(
                "push token invalid, removed",
                metadata: ["user": "\(entry.user)", "device": "\(entry.device)", "reason": "\(answer.reason ?? "-")"])
            // Only if it is still the token that was refused: the app may have sent a new one since.
            commands.send(Self.removeTokenCommand(entry)) { _ in }
            acknowledge(id)
        case .retry(let after):
            let attempts = entry.attempts + 1
            guard let delay = policy.delay(afterAttempt: attempts, retryAfter: after.map { min($0, maxRetryWait) }, using: &generator)
            else {
                figures.failed += 1
                return deadLetter(id: id, fields: entry.encodedFields, reason: "gave up after \(attempts) attempts: \(answer.reason ?? "no answer")")
            }
            figures.retried += 1
            // Its idle time starts again, so no other notifier claims an entry this one is still retrying (XCLAIM of
            // its own entry with a minimum idle time of 0 resets it).
            commands.send(Self.command("XCLAIM", stream, Self.group, consumer, "0", id, "JUSTID")) { _ in }
            var next = entry
            next.attempts = attempts
            delays.after(delay) { [weak self] in self?.attempt(next, id: id) }
        case .failed(let reason):
            figures.failed += 1
            deadLetter(id: id, fields: entry.encodedFields, reason: reason)
        }
    }

    private func acknowledge(_ id: String) {
        commands.send(Self.command("XACK", stream, Self.group, id)) { _ in }
        finished(id)
    }

    private func deadLetter(id: String, fields: [[UInt8]], reason: String) {
        let add = Self.command("XADD", RedisKeys.notifyDeadLetters, "MAXLEN", "~", "100000", "*")
            + fields + [Array("reason".utf8), Array(reason.utf8), Array("id".utf8), Array(id.utf8)]
        commands.send(add) { _ in }
        acknowledge(id)
    }

    private func finished(_ id: String) {
        inFlight.remove(id)
        readNext()
    }


    /// Queue depth and the age of the oldest entry not yet delivered, for metrics: `XINFO GROUPS`' lag and the
    /// first pending entry's time.
    func depth(_ done: @escaping (_ entries: Int, _ oldestAgeSeconds: Double) -> Void) {
        commands.send(Self.command("XLEN", stream)) { [unowned self] length in
            self.commands.send(Self.command("XPENDING", self.stream, Self.group)) { pending in
                let count = if case .success(.integer(let n)) = length { Int(n) } else { 0 }
                done(count, Self.oldestPendingAge(pending))
            }
        }
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

    /// XREADGROUP's `[[stream, [[id, fields], …]]]` (null when the block timed out).
    private static func entries(inStreamsReply reply: RedisValue) -> [(id: String, fields: RedisValue)] {
        guard case .array(let streams) = reply else { return [] }
        return streams.flatMap { stream -> [(id: String, fields: RedisValue)] in
            guard case .array(let parts) = stream, parts.count == 2 else { return [] }
            return entries(parts[1])
        }
    }

    /// `[[id, fields], …]`; an entry deleted while pending has null fields (kept: it goes to the dead letters).
    private static func entries(_ list: RedisValue) -> [(id: String, fields: RedisValue)] {
        guard case .array(let items) = list else { return [] }
        return items.compactMap { item in
            guard case .array(let pair) = item, pair.count == 2, case .string(let id) = pair[0] else { return nil }
            return (String(decoding: id, as: UTF8.self), pair[1])
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
