import Glibc
import PushCore
import PushPosix

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

/// A receivers process: opens its connections, authenticates them, heartbeats, and records every application
/// message it gets (latency from the payload's `t`, seq order, fan-out message number `k`). Reports to the
/// coordinator: `started`, `ready` (every connection authenticated or failed), `progress` four times a
/// second, and `result` on the `report` command (which also starts a new measuring phase).
final class Receivers {
    let plan: ReceiverPlan
    let loop: EventLoop
    private let destination: sockaddr_in
    private var link: ParentLink!
    private var connections: [ReceiverConnection?]
    private let birth = Posix.monotonicNanos()

    // Connecting.
    private var started = false
    private(set) var t0: UInt64 = 0
    private var nextToOpen = 0
    private var handshaking = 0
    private var online = 0
    private var failed = 0
    private var failures: [String: Int] = [:]
    private var connectLatency = Latency()
    private var lastAuthAt: UInt64 = 0
    private var readySent = false
    /// Handshake attempts per connection after the first, the connections waiting to try again, and why.
    private var retries: [Int: Int] = [:]
    private var retryQueue: [(index: Int, at: UInt64)] = []
    private var retryCount = 0
    private var retryReasons: [String: Int] = [:]
    static let maxRetries = 5

    // Holding.
    private var quitting = false
    private var unexpectedCloses = 0
    private var closeReasons: [String: Int] = [:]
    private var heartbeatsSent = 0
    var heartbeatReplies = 0
    private var heartbeatSeq: UInt32 = 0
    private var ticks = 0
    /// Connections with a stored message not yet ACKed, oldest first, with the time the first one came.
    private var ackQueue: [(index: Int, since: UInt64)] = []
    private var ackHead = 0
    private var acksSent = 0

    // The current measuring phase (reset by `report`).
    /// Counts `report`s: progress reports carry it so the coordinator can drop those of an ended phase.
    private var phase = 0
    /// Time of the read being processed, taken once per read().
    var now: UInt64 = 0
    private var delivered = 0
    private var latency = Latency()
    private var firstDeliveryAt: UInt64 = 0
    private var lastDeliveryAt: UInt64 = 0
    private var gaps = 0
    private var duplicates = 0
    private var fanCount: [Int]
    private var fanFirst: [UInt64]
    private var fanLast: [UInt64]
    private var complete = 0
    private var completion = Latency()
    private var lastCompletionAt: UInt64 = 0
    /// Replay: the sum of the `last_seq`s the connections' AUTH_REPLYs gave: the messages waiting for them.
    private var backlog = 0

    static let tick = 0.1

    init(plan: ReceiverPlan) throws {
        guard let destination = Posix.ipv4Address(plan.host, port: plan.port) else {
            throw BenchError("--host \(plan.host) is not an IPv4 address")
        }
        self.plan = plan
        self.destination = destination
        loop = try EventLoop.bench()
        guard plan.count + 64 <= loop.capacity else {
            throw BenchError("\(plan.count) connections do not fit the file limit of \(loop.capacity) per process")
        }
        connections = Array(repeating: nil, count: plan.count)
        fanCount = Array(repeating: 0, count: plan.messages)
        fanFirst = Array(repeating: .max, count: plan.messages)
        fanLast = Array(repeating: 0, count: plan.messages)
    }

    func run() {
        link = ParentLink(loop: loop)
        link.onCommand = { [unowned self] command, arguments in self.command(command, arguments) }
        link.onClose = { [unowned self] in self.quit() }
        loop.every(Self.tick) { [unowned self] in self.onTick() }
        loop.every(0.25) { [unowned self] in self.sendProgress() }
        if plan.ackInterval > 0 { loop.every(0.05) { [unowned self] in self.sendAcks() } }
        ParentLink.send {
            $0.field("type", "started")
            $0.field("pid", Int(getpid()))
        }
        loop.run()
    }

    private func command(_ command: String, _ arguments: [String]) {
        switch command {
        case "connect":
            guard !started else { return }
            started = true
            t0 = arguments.first.flatMap { UInt64($0) } ?? Posix.monotonicNanos()
            openMore()
            checkReady()
        case "report": report()
        case "quit": quit()
        default: note("receivers: unknown command \(command)")
        }
    }

    // MARK: - Connecting

    /// Opens connections while the in-flight limit and the rate allow.
    func openMore() {
        guard started, !quitting, nextToOpen < plan.count else { return }
        var allowance = Int.max
        if plan.rate > 0 {
            let elapsed = Double(Posix.monotonicNanos() &- t0) / 1e9
            allowance = Int(plan.rate * elapsed) + 1 - nextToOpen
        }
        while nextToOpen < plan.count && handshaking < plan.inFlight && allowance > 0 {
            open(nextToOpen)
            nextToOpen += 1
            allowance -= 1
        }
    }

    private func open(_ index: Int) {
        let global = plan.first + index
        let source = plan.sources.isEmpty ? nil : plan.sources[global % plan.sources.count]
        do {
            let fd = try Posix.connect(to: destination, from: source).fd
            let connection = ReceiverConnection(owner: self, index: index, fd: fd, startedAt: Posix.monotonicNanos())
            guard loop.register(fd, connection, events: .write) else {
                Posix.close(fd)
                fail("descriptor \(fd) over the table")
                return
            }
            connections[index] = connection
            handshaking += 1
        } catch {
            fail(Sockets.describe(error))
        }
    }

    private func fail(_ reason: String) {
        failed += 1
        failures[reason, default: 0] += 1
    }

    /// The AUTH body of connection `index`.
    func authBody(_ index: Int) -> [UInt8] {
        let global = plan.first + index
        var writer = JSONWriter()
        writer.object {
            $0.field("mid", plan.userPrefix + String(global))
            $0.field("key", "k" + String(global))
            $0.field("platform", "bench")
            if let lastSeq = plan.lastSeq { $0.field("last_seq", lastSeq) }
        }
        return writer.bytes
    }

    func authenticated(_ connection: ReceiverConnection, lastSeq: UInt64) {
        let now = Posix.monotonicNanos()
        handshaking -= 1
        online += 1
        connectLatency.record(nanos: now &- connection.startedAt)
        lastAuthAt = now
        if plan.replay {
            connection.target = lastSeq
            backlog += Int(lastSeq)
            if lastSeq == 0 { completed(connection, at: now) }
        }
        openMore()
        checkReady()
    }

    /// A connection closed. One refused during the handshake with DISCONNECT `reconnect: true` (the gateway could
    /// not reach Redis, say) tries again after `after_ms`, as a real client would, up to `maxRetries` times.
    func closed(_ connection: ReceiverConnection, wasOnline: Bool, reason: String, reconnectAfter: Int?) {
        if wasOnline {
            online -= 1
            guard !quitting else { return }
            unexpectedCloses += 1
            closeReasons[reason, default: 0] += 1
            return
        }
        handshaking -= 1
        let attempts = retries[connection.index, default: 0]
        if let reconnectAfter, !quitting, !readySent, attempts < Self.maxRetries {
            retries[connection.index] = attempts + 1
            retryCount += 1
            retryReasons[reason, default: 0] += 1
            retryQueue.append((connection.index, Posix.monotonicNanos() &+ UInt64(max(0, reconnectAfter)) * 1_000_000))
        } else {
            fail(reason)
        }
        openMore()
        checkReady()
    }

    /// Opens again the connections whose reconnect delay is over.
    private func retryDue() {
        guard !retryQueue.isEmpty else { return }
        let now = Posix.monotonicNanos()
        var waiting: [(index: Int, at: UInt64)] = []
        for entry in retryQueue {
            if entry.at <= now {
                open(entry.index)
            } else {
                waiting.append(entry)
            }
        }
        retryQueue = waiting
        checkReady()
    }

    private func checkReady() {
        guard started, !readySent, nextToOpen == plan.count, handshaking == 0, retryQueue.isEmpty else { return }
        readySent = true
        ParentLink.send {
            $0.field("type", "ready")
            $0.field("online", online)
            $0.field("failed", failed)
            $0.field("retries", retryCount)
            $0.key("retry_reasons")
            $0.object { writer in for (reason, count) in retryReasons { writer.field(reason, count) } }
            $0.key("failures")
            $0.object { writer in for (reason, count) in failures { writer.field(reason, count) } }
            $0.field("last_auth_ns", lastAuthAt)
            $0.key("connect")
            connectLatency.encode(into: &$0)
        }
    }

    // MARK: - Messages

    /// An application message (op ≥ 1000) arrived on `connection`.
    @inline(__always)
    func message(_ connection: ReceiverConnection, seq: UInt32, body: UnsafeRawBufferPointer) {
        delivered += 1
        if firstDeliveryAt == 0 { firstDeliveryAt = now }
        lastDeliveryAt = now
        if let sent = ByteScan.member("\"t\":", in: body), sent <= now {
            latency.record(nanos: now - sent)
            if plan.messages > 0, let k = ByteScan.member("\"k\":", in: body), k < UInt64(plan.messages) {
                let index = Int(k)
                fanCount[index] += 1
                fanFirst[index] = min(fanFirst[index], now - sent)
                fanLast[index] = max(fanLast[index], now - sent)
            }
        }
        guard seq > 0 else { return }
        // Stored messages: strictly increasing, no gaps, once the first one (or last_seq) fixed the start.
        if connection.lastSeq > 0 || plan.lastSeq != nil {
            let expected = connection.lastSeq &+ 1
            if seq < expected {
                duplicates += 1
            } else if seq > expected {
                gaps += 1
            }
        }
        guard seq > connection.lastSeq else { return }
        connection.lastSeq = seq
        if plan.ackInterval > 0 && !connection.ackQueued {
            connection.ackQueued = true
            ackQueue.append((connection.index, now))
        }
        if plan.replay && !connection.complete && UInt64(seq) >= connection.target {
            completed(connection, at: now)
        }
    }

    private func completed(_ connection: ReceiverConnection, at now: UInt64) {
        connection.complete = true
        complete += 1
        completion.record(nanos: now &- t0)
        lastCompletionAt = now
    }

    // MARK: - Timers

    private func onTick() {
        ticks += 1
        let now = Posix.monotonicNanos()
        if Double(now &- birth) / 1e9 > plan.lifetime {
            note("receivers: lifetime of \(Int(plan.lifetime)) s is over, quitting")
            quit()
        }
        guard started else { return }
        retryDue()
        openMore()
        if !readySent && Double(now &- t0) / 1e9 > plan.connectTimeout {
            for case let connection? in connections where connection.isHandshaking {
                connection.close("connect timeout")
            }
            for _ in retryQueue { fail("connect timeout (waiting to reconnect)") }
            retryQueue = []
            if nextToOpen < plan.count {
                failed += plan.count - nextToOpen
                failures["not started (connect timeout)", default: 0] += plan.count - nextToOpen
                nextToOpen = plan.count
            }
            checkReady()
        }
        // Heartbeats: every connection once per `heartbeat` seconds, a slice of them each tick.
        let slices = max(1, Int(plan.heartbeat / Self.tick))
        heartbeatSeq &+= 1
        var index = ticks % slices
        while index < connections.count {
            if let connection = connections[index], connection.isOnline {
                var frame: [UInt8] = []
                Frame.encodeHeader(operation: .heartbeat, sequence: heartbeatSeq, bodyLength: 0, into: &frame)
                connection.send(frame)
                heartbeatsSent += 1
            }
            index += slices
        }
    }

    /// ACKs each connection's newest seq `ackInterval` after the first message it has not ACKed: connections
    /// ACK at their own times, not all in the same instant (which would hit Redis in bursts a real client
    /// population never produces).
    private func sendAcks() {
        let due = Posix.monotonicNanos() &- UInt64(plan.ackInterval * 1e9)
        while ackHead < ackQueue.count && ackQueue[ackHead].since <= due {
            let index = ackQueue[ackHead].index
            ackHead += 1
            guard let connection = connections[index] else { continue }
            connection.ackQueued = false
            guard connection.isOnline, connection.lastSeq > connection.ackedSeq else { continue }
            connection.ackedSeq = connection.lastSeq
            var body: [UInt8] = []
            body.append("{\"seq\":")
            body.appendDecimal(UInt64(connection.lastSeq))
            body.append("}")
            var frame: [UInt8] = []
            Frame.encode(operation: .ack, sequence: 0, body: body, into: &frame)
            connection.send(frame)
            acksSent += 1
        }
        if ackHead > 4096 && ackHead * 2 > ackQueue.count {
            ackQueue.removeFirst(ackHead)
            ackHead = 0
        }
    }

    private func sendProgress() {
        guard started else { return }
        ParentLink.send {
            $0.field("type", "progress")
            $0.field("phase", phase)
            $0.field("online", online)
            $0.field("opened", nextToOpen)
            $0.field("failed", failed)
            $0.field("delivered", delivered)
            $0.field("complete", complete)
            $0.field("unexpected_closes", unexpectedCloses)
        }
    }

    // MARK: - Reports

    private func report() {
        ParentLink.send {
            $0.field("type", "result")
            $0.field("online", online)
            $0.field("failed", failed)
            $0.field("unexpected_closes", unexpectedCloses)
            $0.key("close_reasons")
            $0.object { writer in for (reason, count) in closeReasons { writer.field(reason, count) } }
            $0.field("heartbeats_sent", heartbeatsSent)
            $0.field("heartbeat_replies", heartbeatReplies)
            $0.field("acks_sent", acksSent)
            $0.field("delivered", delivered)
            $0.field("first_delivery_ns", firstDeliveryAt)
            $0.field("last_delivery_ns", lastDeliveryAt)
            $0.field("gaps", gaps)
            $0.field("duplicates", duplicates)
            $0.field("complete", complete)
            $0.field("backlog", backlog)
            $0.field("last_completion_ns", lastCompletionAt)
            $0.key("latency")
            latency.encode(into: &$0)
            $0.key("completion")
            completion.encode(into: &$0)
            $0.key("fan_count")
            $0.array { writer in fanCount.forEach { writer.value($0) } }
            $0.key("fan_first_ns")
            $0.array { writer in fanFirst.forEach { writer.value($0 == .max ? 0 : $0) } }
            $0.key("fan_last_ns")
            $0.array { writer in fanLast.forEach { writer.value($0) } }
        }
        phase += 1
        delivered = 0
        latency.reset()
        firstDeliveryAt = 0
        lastDeliveryAt = 0
        gaps = 0
        duplicates = 0
        for index in 0..<plan.messages {
            fanCount[index] = 0
            fanFirst[index] = .max
            fanLast[index] = 0
        }
    }

    private func quit() {
        guard !quitting else { return }
        quitting = true
        for case let connection? in connections { connection.close("quit", reset: true) }
        exit(0)
    }
}
