import Glibc
import PushCore
import PushPosix

/// What one pusher process does, as the coordinator planned it (its command line).
struct PusherPlan {
    enum Mode: String {
        /// Pushes to random users of `first..<first+users`, at `rate` or flat out, for `duration` seconds.
        case random
        /// Stores `messages` messages for every user of the range: one push per `usersPerPush` users.
        case fill
        /// `messages` broadcasts (`to.all`) one after the other, `interval` seconds apart.
        case broadcast
    }

    var host: String
    var port: Int
    var source: in_addr?
    var connections: Int
    var depth: Int
    var mode: Mode
    /// Pushes per second from this process; 0: flat out.
    var rate: Double
    var duration: Double
    var store: Bool
    /// Pushes per HTTP request (`/v1/push/batch` when above 1).
    var batch: Int
    var first: Int
    var users: Int
    var userPrefix: String
    var operation: Int
    /// Extra payload bytes (a string member `p`).
    var payloadBytes: Int
    var messages: Int
    var usersPerPush: Int
    var interval: Double
    var lifetime: Double
}

/// A pusher process: HTTP clients with keep-alive and pipelining that post pushes whose payload carries the
/// send time `{"t":<CLOCK_MONOTONIC ns>}`. Reports `started` once its connections are up, runs on `go`, and
/// sends `result` when its work is done (its time is up, or every fill or broadcast push was answered).
final class Pusher {
    let plan: PusherPlan
    let loop: EventLoop
    private let destination: sockaddr_in
    private var link: ParentLink!
    private var connections: [HTTPPushConnection] = []
    private let birth = Posix.monotonicNanos()

    private enum State { case connecting, waiting, running, draining, done }
    private var state = State.connecting
    private var connectedCount = 0
    private var connectFailures: [String: Int] = [:]
    private var startedAt: UInt64 = 0
    private var endAt: UInt64 = 0
    private var finishedAt: UInt64 = 0
    private var drainingSince: UInt64 = 0
    private var cursor = 0
    private var random = SplitMix64(seed: UInt64(getpid()) &* 0x9E37_79B9_7F4A_7C15 ^ Posix.monotonicNanos())

    // Work done.
    private var sentPushes = 0
    private var requests = 0
    private var responses = 0
    private var okPushes = 0
    private var okRecipients = 0
    private var pushErrors = 0
    private var statusCounts: [Int: Int] = [:]
    /// The first body of each error status, so the report can say why.
    private var errorSamples: [Int: String] = [:]
    private var connectionErrors: [String: Int] = [:]
    private var lostPushes = 0
    private var onlineSum = 0
    private var httpLatency = Latency()
    // Fill.
    private var fillNext = 0
    private var fillTotal = 0
    private var chunks = 0
    // Broadcast.
    private var nextMessage = 0
    private var nextBroadcastAt: UInt64 = 0
    private var broadcastDelivered: [Int]
    private var broadcastReplyNanos: [UInt64]

    private var body: [UInt8] = []
    private let userPrefix: [UInt8]
    private let padding: [UInt8]
    private let hostHeader: [UInt8]

    /// After the time is up, how long answers to requests in flight are awaited.
    static let drainSeconds = 15.0

    init(plan: PusherPlan) throws {
        guard let destination = Posix.ipv4Address(plan.host, port: plan.port) else {
            throw BenchError("--host \(plan.host) is not an IPv4 address")
        }
        self.plan = plan
        self.destination = destination
        loop = try EventLoop.bench()
        userPrefix = Array(plan.userPrefix.utf8)
        padding = Array(repeating: UInt8(ascii: "x"), count: plan.payloadBytes)
        hostHeader = Array("\(plan.host):\(plan.port)".utf8)
        broadcastDelivered = Array(repeating: -1, count: plan.mode == .broadcast ? plan.messages : 0)
        broadcastReplyNanos = Array(repeating: 0, count: plan.mode == .broadcast ? plan.messages : 0)
        if plan.mode == .fill {
            chunks = (plan.users + plan.usersPerPush - 1) / max(1, plan.usersPerPush)
            fillTotal = chunks * plan.messages
        }
    }

    func run() {
        link = ParentLink(loop: loop)
        link.onCommand = { [unowned self] command, arguments in self.command(command, arguments) }
        link.onClose = { exit(0) }
        let connectionCount = plan.mode == .broadcast ? 1 : plan.connections
        for _ in 0..<connectionCount {
            do {
                let fd = try Posix.connect(to: destination, from: plan.source).fd
                let connection = HTTPPushConnection(owner: self, fd: fd)
                loop.register(fd, connection, events: .write)
                connections.append(connection)
            } catch {
                connectFailures[Sockets.describe(error), default: 0] += 1
            }
        }
        checkStarted()
        loop.every(plan.rate > 0 ? 0.001 : 0.01) { [unowned self] in self.pump() }
        loop.every(0.5) { [unowned self] in self.onTick() }
        loop.run()
    }

    private func command(_ command: String, _ arguments: [String]) {
        switch command {
        case "go":
            guard state == .waiting else { return }
            state = .running
            startedAt = Posix.monotonicNanos()
            endAt = startedAt &+ UInt64(plan.duration * 1e9)
            nextBroadcastAt = startedAt
            pump()
        case "quit": exit(0)
        default: note("pusher: unknown command \(command)")
        }
    }

    func connected(_ connection: HTTPPushConnection) {
        connectedCount += 1
        checkStarted()
    }

    private func checkStarted() {
        guard state == .connecting else { return }
        let open = connections.filter(\.isOpen).count
        guard connectedCount == open else { return }
        state = .waiting
        ParentLink.send {
            $0.field("type", "started")
            $0.field("pid", Int(Posix.pid()))
            $0.field("connections", connectedCount)
            $0.key("connect_failures")
            $0.object { writer in for (reason, count) in connectFailures { writer.field(reason, count) } }
        }
        if connectedCount == 0 { finish() }
    }

    // MARK: - Sending

    private var inFlight: Int { connections.reduce(0) { $0 + ($1.isOpen ? $1.inFlightCount : 0) } }

    private var workLeft: Bool {
        switch plan.mode {
        case .random: true
        case .fill: fillNext < fillTotal
        case .broadcast: nextMessage < plan.messages
        }
    }

    /// Sends what the rate, the pipelines and the remaining work allow.
    private func pump() {
        guard state == .running || state == .draining else { return }
        let now = Posix.monotonicNanos()
        if state == .running && (now >= endAt || !workLeft) {
            state = .draining
            drainingSince = now
        }
        if state == .draining {
            if inFlight == 0 || Double(now &- drainingSince) / 1e9 > Self.drainSeconds
                || connections.allSatisfy({ !$0.isOpen })
            {
                finish()
            }
            return
        }
        if plan.mode == .broadcast {
            guard inFlight == 0, now >= nextBroadcastAt, let connection = connections.first, connection.isOpen else {
                return
            }
            sendBroadcast(on: connection, now: now)
            connection.flush()
            return
        }
        var budget = Int.max
        if plan.rate > 0 { budget = Int(plan.rate * Double(now &- startedAt) / 1e9) - sentPushes }
        var idle = 0
        var index = cursor
        while idle < connections.count && budget >= plan.batch && workLeft {
            let connection = connections[index]
            index = (index + 1) % connections.count
            guard connection.isOpen, connection.isConnected, connection.inFlightCount < plan.depth else {
                idle += 1
                continue
            }
            idle = 0
            let pushes = plan.mode == .fill ? sendFill(on: connection, now: now) : sendRandom(on: connection, now: now)
            budget -= pushes
            // Fill a connection's pipeline before moving on: fewer, larger writes.
            if connection.inFlightCount < plan.depth && budget >= plan.batch {
                index = (index + connections.count - 1) % connections.count
            }
        }
        cursor = index
        for connection in connections where !connection.output.isEmpty { connection.flush() }
    }

    private func sendRandom(on connection: HTTPPushConnection, now: UInt64) -> Int {
        body.removeAll(keepingCapacity: true)
        if plan.batch > 1 { body.append("{\"pushes\":[") }
        for item in 0..<plan.batch {
            if item > 0 { body.append(",") }
            body.append("{\"to\":{\"users\":[\"")
            body.append(contentsOf: userPrefix)
            body.appendDecimal(plan.first + Int(random.next() % UInt64(plan.users)))
            body.append("\"]},\"op\":")
            appendTail(now: now, message: nil)
        }
        if plan.batch > 1 { body.append("]}") }
        send(
            on: connection, path: plan.batch > 1 ? "/v1/push/batch" : "/v1/push", now: now, pushes: plan.batch,
            recipients: plan.batch, message: -1)
        return plan.batch
    }

    private func sendFill(on connection: HTTPPushConnection, now: UInt64) -> Int {
        let message = fillNext / chunks
        let chunk = fillNext % chunks
        fillNext += 1
        let from = chunk * plan.usersPerPush
        let to = min(plan.users, from + plan.usersPerPush)
        body.removeAll(keepingCapacity: true)
        body.append("{\"to\":{\"users\":[")
        for user in from..<to {
            if user > from { body.append(",") }
            body.append("\"")
            body.append(contentsOf: userPrefix)
            body.appendDecimal(plan.first + user)
            body.append("\"")
        }
        body.append("]},\"op\":")
        appendTail(now: now, message: message)
        send(on: connection, path: "/v1/push", now: now, pushes: 1, recipients: to - from, message: message)
        return 1
    }

    private func sendBroadcast(on connection: HTTPPushConnection, now: UInt64) {
        let message = nextMessage
        nextMessage += 1
        nextBroadcastAt = now &+ UInt64(plan.interval * 1e9)
        body.removeAll(keepingCapacity: true)
        body.append("{\"to\":{\"all\":true},\"op\":")
        appendTail(now: now, message: message)
        send(on: connection, path: "/v1/push", now: now, pushes: 1, recipients: 0, message: message)
    }

    /// `<op>,"store":…,"payload":{"t":<now>[,"k":<message>][,"p":"xxx…"]}}`.
    private func appendTail(now: UInt64, message: Int?) {
        body.appendDecimal(plan.operation)
        body.append(plan.store ? ",\"store\":true,\"payload\":{\"t\":" : ",\"store\":false,\"payload\":{\"t\":")
        body.appendDecimal(now)
        if let message {
            body.append(",\"k\":")
            body.appendDecimal(message)
        }
        if !padding.isEmpty {
            body.append(",\"p\":\"")
            body.append(contentsOf: padding)
            body.append("\"")
        }
        body.append("}}")
    }

    private func send(
        on connection: HTTPPushConnection, path: StaticString, now: UInt64, pushes: Int, recipients: Int, message: Int
    ) {
        connection.output.append("POST ")
        connection.output.append(path)
        connection.output.append(" HTTP/1.1\r\nHost: ")
        connection.output.append(contentsOf: hostHeader)
        connection.output.append("\r\nContent-Type: application/json\r\nContent-Length: ")
        connection.output.appendDecimal(body.count)
        connection.output.append("\r\n\r\n")
        connection.output.append(contentsOf: body)
        connection.sent(.init(sentAt: now, pushes: pushes, recipients: recipients, message: message))
        sentPushes += pushes
        requests += 1
    }

    // MARK: - Answers

    func response(_ status: Int, _ body: UnsafeRawBufferPointer, for request: HTTPPushConnection.InFlight) {
        let now = Posix.monotonicNanos()
        responses += 1
        httpLatency.record(nanos: now &- request.sentAt)
        if status == 200 {
            // A batch answers each push in order; a failed one is `{"status":n,"error":{…}}`.
            let errors = request.pushes > 1 ? ByteScan.occurrences("\"error\":", in: body) : 0
            okPushes += request.pushes - errors
            pushErrors += errors
            okRecipients += errors == 0 ? request.recipients : 0
            if plan.mode == .broadcast {
                broadcastDelivered[request.message] = Int(ByteScan.member("\"delivered\":", in: body) ?? 0)
                broadcastReplyNanos[request.message] = now &- request.sentAt
            } else {
                onlineSum += ByteScan.onlineSum(in: body)
            }
        } else {
            statusCounts[status, default: 0] += 1
            pushErrors += request.pushes
            if errorSamples[status] == nil { errorSamples[status] = String(decoding: body.prefix(300), as: UTF8.self) }
        }
        pump()
    }

    func connectionFailed(_ connection: HTTPPushConnection, reason: String, lost: [HTTPPushConnection.InFlight]) {
        if !connection.isConnected || state == .connecting {
            connectFailures[reason, default: 0] += 1
            checkStarted()
            return
        }
        connectionErrors[reason, default: 0] += 1
        lostPushes += lost.reduce(0) { $0 + $1.pushes }
        pump()
    }

    private func onTick() {
        if Double(Posix.monotonicNanos() &- birth) / 1e9 > plan.lifetime {
            note("pusher: lifetime of \(Int(plan.lifetime)) s is over, quitting")
            exit(0)
        }
        guard state == .running || state == .draining else { return }
        ParentLink.send {
            $0.field("type", "progress")
            $0.field("sent", sentPushes)
            $0.field("ok", okPushes)
            $0.field("errors", pushErrors)
        }
    }

    private func finish() {
        guard state != .done else { return }
        state = .done
        finishedAt = Posix.monotonicNanos()
        for connection in connections { connection.close() }
        ParentLink.send {
            $0.field("type", "result")
            $0.field("started_ns", startedAt)
            $0.field("finished_ns", finishedAt)
            $0.field("connections", connectedCount)
            $0.field("requests", requests)
            $0.field("responses", responses)
            $0.field("pushes", sentPushes)
            $0.field("ok_pushes", okPushes)
            $0.field("ok_recipients", okRecipients)
            $0.field("push_errors", pushErrors)
            $0.field("lost_pushes", lostPushes)
            $0.field("online_sum", onlineSum)
            $0.key("statuses")
            $0.object { writer in for (status, count) in statusCounts { writer.field(String(status), count) } }
            $0.key("error_samples")
            $0.object { writer in for (status, sample) in errorSamples { writer.field(String(status), sample) } }
            $0.key("connection_errors")
            $0.object { writer in
                for (reason, count) in connectionErrors.merging(connectFailures, uniquingKeysWith: +) {
                    writer.field(reason, count)
                }
            }
            $0.key("http_latency")
            httpLatency.encode(into: &$0)
            $0.key("broadcast_delivered")
            $0.array { writer in broadcastDelivered.forEach { writer.value($0) } }
            $0.key("broadcast_reply_ns")
            $0.array { writer in broadcastReplyNanos.forEach { writer.value($0) } }
        }
    }
}
