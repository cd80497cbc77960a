import Logging
import PushCore
import PushPosix

/// A worker's side of the admin machinery: every second it sends the master a snapshot of its figures over the
/// control pipe, keeps the gateway-wide `/metrics` text the master sends back, and runs the commands the master
/// forwards (`conns`, `kick`, `nodes`, `drain`, `log-level`). A worker started without a pipe (by hand, for
/// debugging) serves `/metrics` from its own figures.
final class WorkerControl {
    /// What the worker lends this object.
    struct Parts {
        let loop: EventLoop
        let logger: Logger
        let index: Int
        let node: String
        let stats: WorkerStats
        let connections: ConnectionServer
        let store: MessageStore
        let registry: NodeRegistry
        let http: HTTPServer
        /// Stops taking clients and sends the connected ones away, keeping the HTTP API.
        let drain: () -> Void
        let isDraining: () -> Bool
        /// The master's TLS session ticket keys arrived (`tls-keys`, sent at start and at each rotation).
        let ticketKeys: ([TLSTicketKey]) -> Void
        /// The certificate files changed and nothing else did (`tls-reload`, on SIGHUP): reload them in place.
        let reloadCertificate: () -> Void
    }

    /// Most connections one worker lists for `conns`.
    static let connsLimit = 1000
    /// How long `GET /metrics` waits for the master's first text before answering from this worker's figures.
    static let metricsWait = 2.0

    let parts: Parts
    private let channel: ControlChannel?
    private var timer: LoopTimer!
    private let startedAt: Double
    /// The master's latest gateway-wide Prometheus text.
    private var metricsText: [UInt8]?
    private var waiting: [(HTTPResponse) -> Void] = []
    private var waitingSince = 0.0
    /// Called when the pipe to the master is lost.
    var onLost: (() -> Void)?
    /// Bans in Redis, for `bans`, `ban`, `unban` (`WorkerControl+Bans.swift`); set by the worker.
    var edge: EdgeState!

    /// `controlFD`: the worker's end of its control pipe, nil when started without a master.
    init(_ parts: Parts, controlFD: Int32?) {
        self.parts = parts
        startedAt = Self.wallClock()
        if let controlFD, !Posix.isOpenDescriptor(controlFD) {
            parts.logger.error("no control pipe on the descriptor given, running without a master", metadata: ["fd": "\(controlFD)"])
            channel = nil
        } else if let controlFD {
            let channel = ControlChannel(fd: controlFD, loop: parts.loop)
            if parts.loop.register(controlFD, channel, events: .read) {
                self.channel = channel
            } else {
                parts.logger.error("cannot watch the control pipe", metadata: ["fd": "\(controlFD)"])
                Posix.close(controlFD)
                self.channel = nil
            }
        } else {
            channel = nil
        }
        channel?.onMessage = { [unowned self] in self.received($0) }
        channel?.onClose = { [unowned self] reason in
            parts.logger.error("control pipe to the master closed", metadata: ["reason": "\(reason.rawValue)"])
            self.onLost?()
        }
        timer = LoopTimer(loop: parts.loop) { [unowned self] in self.everySecond() }
        parts.stats.metricsSource = { [unowned self] in self.serveMetrics($0) }
    }

    /// Sends the first snapshot at once (the master answers with the `/metrics` text), then one a second.
    func start() {
        channel?.send(.snapshot(snapshot()))
        timer.start(after: 1, repeat: 1)
    }

    /// Sends a last snapshot (what was counted since the previous one) and writes it out before the loop ends.
    func stop() {
        timer.stop()
        guard let channel, channel.isOpen else { return }
        channel.send(.snapshot(snapshot()))
        channel.flush()
    }

    private func everySecond() {
        channel?.send(.snapshot(snapshot()))
        if !waiting.isEmpty, Posix.monotonicSeconds() - waitingSince >= Self.metricsWait {
            answerWaiting(localMetrics())
        }
        LogSetup.reportSuppressed(parts.logger)
    }

    /// This worker's figures now.
    func snapshot() -> WorkerSnapshot {
        let stats = parts.stats
        let redis = parts.store.redis
        var snapshot = WorkerSnapshot(
            pid: Int(Posix.pid()), index: parts.index, node: parts.node, time: Posix.monotonicSeconds(), startedAt: startedAt)
        snapshot.connections = parts.connections.connectionCount
        snapshot.users = parts.connections.users.userCount
        snapshot.httpConnections = parts.http.connectionCount
        snapshot.writeQueueBytes = parts.loop.queuedOutputBytes
        snapshot.residentBytes = Posix.residentBytes()
        snapshot.redisUp = parts.store.isAvailable
        snapshot.draining = parts.isDraining()
        snapshot.redisP50 = redis.latencyPercentile(50)
        snapshot.redisP99 = redis.latencyPercentile(99)
        var totals = MetricTotals()
        totals[.accepted] = stats.accepted
        totals[.authenticated] = stats.authenticated
        totals[.framesIn] = stats.framesIn
        totals[.framesOut] = stats.framesOut
        totals[.pushes] = stats.pushes
        totals[.deliveries] = stats.delivered
        totals[.stored] = stats.stored
        totals[.gapFills] = stats.gapFills
        totals[.catchUps] = stats.catchUps
        totals[.httpRequests] = stats.httpRequests
        totals[.httpBackpressure] = stats.httpBackpressure
        totals[.httpClosedOverflow] = stats.httpClosedOverflow
        totals[.redisCommands] = redis.commandsSent
        totals[.redisErrors] = redis.errors
        totals[.redisReconnects] = redis.reconnects
        totals[.flushSlices] = parts.loop.flushSlicesCut
        totals[.tlsHandshakesDeferred] = parts.loop.handshakesDeferred
        totals[.apiForbidden] = stats.apiForbidden
        totals[.apiRateLimited] = stats.apiRateLimited
        totals[.bannedAtAccept] = stats.bannedAtAccept
        totals[.bannedAtAuth] = stats.bannedAtAuth
        totals[.bannedDisconnects] = stats.bannedDisconnects
        totals[.bannedRegisters] = stats.bannedRegisters
        totals[.refusedConnectRate] = stats.refusedConnectRate
        totals[.refusedMaxConnsPerIP] = stats.refusedMaxConnsPerIP
        totals[.rateLimitedFrames] = stats.rateLimitedFrames
        totals[.rateLimitedCloses] = stats.rateLimitedCloses
        totals[.autobans] = stats.autobans
        totals.closes = stats.closes
        totals.pushDelivery = stats.pushDelivery
        totals.redisLatency = redis.latencyHistogram
        snapshot.totals = totals
        return snapshot
    }

    // MARK: - /metrics

    private func serveMetrics(_ respond: @escaping (HTTPResponse) -> Void) {
        if let metricsText { return respond(Self.response(metricsText)) }
        guard channel?.isOpen == true else { return respond(localMetrics()) }
        if waiting.isEmpty { waitingSince = Posix.monotonicSeconds() }
        waiting.append(respond)
    }

    /// This worker's figures alone, as if it were the whole gateway.
    private func localMetrics() -> HTTPResponse {
        var metrics = GatewayMetrics()
        let snapshot = snapshot()
        metrics.record(snapshot)
        let report = GatewayReport(
            metrics: metrics,
            processes: [.init(pid: snapshot.pid, index: parts.index, generation: 1, stopping: false)],
            uptime: max(0, Self.wallClock() - startedAt), generation: 1, draining: snapshot.draining, restarts: 0)
        return Self.response(report.prometheus())
    }

    private func answerWaiting(_ response: HTTPResponse) {
        let responders = waiting
        waiting = []
        responders.forEach { $0(response) }
    }

    private static func response(_ text: [UInt8]) -> HTTPResponse {
        HTTPResponse(body: text, contentType: PrometheusText.contentType)
    }

    private static func wallClock() -> Double { Posix.wallSecondsPrecise() }

    // MARK: - Commands from the master

    private func received(_ message: ControlMessage) {
        switch message {
        case .metrics(let text):
            metricsText = text
            if !waiting.isEmpty { answerWaiting(Self.response(text)) }
        case .command(let id, let name, let arguments):
            run(name, arguments) { [weak channel] lines in
                guard id != 0 else { return }
                channel?.send(.reply(id: id, lines: lines))
            }
        case .snapshot, .reply:
            break
        }
    }

    private func run(_ name: String, _ arguments: [String], reply: @escaping ([String]) -> Void) {
        switch (name, arguments.count) {
        case ("notify-stats", 0):
            guard parts.store.isAvailable else { return reply(["ERR Redis is not available"]) }
            NotifyFigures.fetch(parts.store.scripts.redis) { reply($0.statsLines) }
        case ("notify-dead", 1):
            guard parts.store.isAvailable else { return reply(["ERR Redis is not available: the queue lives there"]) }
            deadLetters(count: Int(arguments[0]) ?? AdminCommand.notifyDefault, reply: reply)
        case ("conns", 0...1):
            reply(conns(arguments.first))
        case ("kick", 1...2):
            reply(["kicked \(kick(arguments[0], key: arguments.count > 1 ? arguments[1] : nil))"])
        case ("nodes", 0):
            parts.registry.fetch { result in
                switch result {
                case .success(let nodes):
                    let now = Posix.wallSeconds()
                    reply(
                        nodes.map {
                            "node \(AdminText.escape($0.id)) addr=\(AdminText.escape($0.address)) conns=\($0.connections) "
                                + "updated_s=\(now >= $0.updatedAt ? now - $0.updatedAt : 0)"
                        })
                case .failure(let error):
                    reply(["ERR Redis: \(error)"])
                }
            }
        case ("drain", 0):
            parts.drain()
            reply(["draining"])
        case ("tls-keys", 1...):
            // Not an operator's command (the admin socket has no such one): the master's, with id 0, unanswered.
            parts.ticketKeys(arguments.compactMap { Base64.decode($0).flatMap(TLSTicketKey.init(bytes:)) })
            reply([])
        case ("tls-reload", 0):
            // The master's, with id 0, unanswered (the master checked the files before it sent it).
            parts.reloadCertificate()
            reply([])
        case ("log-level", 1):
            guard let level = Logger.Level(rawValue: arguments[0]) else { return reply(["ERR unknown level"]) }
            LogSetup.setLevel(level)
            reply(["level \(level)"])
        case ("bans", 0), ("ban", 1), ("unban", 1):
            runBanCommand(name, arguments, reply: reply)
        default:
            reply(["ERR unknown command \(name) with \(arguments.count) arguments"])
        }
    }

    /// `matched <n>` (authenticated connections that match), then up to `connsLimit` lines describing them.
    private func conns(_ user: String?) -> [String] {
        let connections = parts.connections
        var matched = 0
        var lines: [String] = []
        func transport(_ connection: ClientConnection) -> String {
            let webSocket = connection is WebSocketConnection
            return connection.isTLS ? (webSocket ? "wss" : "tls") : (webSocket ? "websocket" : "tcp")
        }
        func describe(_ connection: ClientConnection) {
            matched += 1
            guard lines.count < Self.connsLimit else { return }
            let session = connection.session
            let now = parts.loop.now
            let room = AdminText.escape(session.room ?? "")
            lines.append(
                "uid=\(AdminText.escape(session.user)) key=\(AdminText.escape(session.key)) "
                    + "platform=\(AdminText.escape(session.platform)) room=\(room) "
                    + "age_s=\(Self.seconds(now &- connection.since)) "
                    + "idle_s=\(Self.seconds(now &- connection.lastActive)) "
                    + "write_queue_bytes=\(connection.pendingOutput) "
                    + "topics=\(parts.connections.topics(of: connection).count) "
                    + "addr=\(AdminText.escape(connection.address.description)) fd=\(connection.fd) "
                    + "transport=\(transport(connection))")
        }
        if let user {
            connections.users.forEach(of: user, describe)
        } else {
            connections.users.forEachConnection(describe)
        }
        if matched > lines.count { lines.append("… \(matched - lines.count) more not listed") }
        return ["matched \(matched)"] + lines
    }

    /// DISCONNECT and close `user`'s connections here (one device's when `key` is given); returns how many.
    private func kick(_ user: String, key: String?) -> Int {
        if let key { return parts.connections.kick(user: user, key: key) }
        let keys = Set(parts.connections.users.connections(of: user).map(\.session.key))
        return keys.reduce(0) { $0 + parts.connections.kick(user: user, key: $1) }
    }

    private static func seconds(_ ticks: UInt32) -> String {
        Figures.decimal(Double(ticks) * EventLoop.tickSeconds, 1)
    }
}
