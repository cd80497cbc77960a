import Glibc
import PushCore
import PushPosix

/// A receivers process: opens its connections, authenticates them, heartbeats, and records every application
/// message it gets (latency from the payload's `t`, seq order, fan-out message number `k`). Reports to the
/// coordinator: `started`, `ready` (every connection authenticated or failed), `progress` four times a
/// second, and `result` on the `report` command (which also starts a new measuring phase).
final class Receivers {
    let plan: ReceiverPlan
    let loop: EventLoop
    let destination: sockaddr_in
    var link: ParentLink!
    var connections: [ReceiverConnection?]
    let birth = Posix.monotonicNanos()

    // Connecting.
    var started = false
    private(set) var t0: UInt64 = 0
    var nextToOpen = 0
    var handshaking = 0
    var online = 0
    var failed = 0
    var failures: [String: Int] = [:]
    var connectLatency = Latency()
    var lastAuthAt: UInt64 = 0
    var readySent = false
    /// Handshake attempts per connection after the first, the connections waiting to try again, and why.
    var retries: [Int: Int] = [:]
    var retryQueue: [(index: Int, at: UInt64)] = []
    var retryCount = 0
    var retryReasons: [String: Int] = [:]
    static let maxRetries = 5

    // Holding.
    var quitting = false
    var unexpectedCloses = 0
    var closeReasons: [String: Int] = [:]
    var heartbeatsSent = 0
    var heartbeatReplies = 0
    var heartbeatSeq: UInt32 = 0
    var ticks = 0
    /// Connections with a stored message not yet ACKed, oldest first, with the time the first one came.
    var ackQueue: [(index: Int, since: UInt64)] = []
    var ackHead = 0
    var acksSent = 0

    // The current measuring phase (reset by `report`).
    /// Counts `report`s: progress reports carry it so the coordinator can drop those of an ended phase.
    var phase = 0
    /// Time of the read being processed, taken once per read().
    var now: UInt64 = 0
    var delivered = 0
    var latency = Latency()
    var firstDeliveryAt: UInt64 = 0
    var lastDeliveryAt: UInt64 = 0
    var gaps = 0
    var duplicates = 0
    var fanCount: [Int]
    var fanFirst: [UInt64]
    var fanLast: [UInt64]
    var complete = 0
    var completion = Latency()
    var lastCompletionAt: UInt64 = 0
    /// Replay: the sum of the `last_seq`s the connections' AUTH_REPLYs gave: the messages waiting for them.
    var backlog = 0

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
            $0.field("pid", Int(Posix.pid()))
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

    private func quit() {
        guard !quitting else { return }
        quitting = true
        for case let connection? in connections { connection.close("quit", reset: true) }
        exit(0)
    }
}
