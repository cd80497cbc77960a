import Glibc
import Logging
import PushCore
import PushPosix

/// The master process (SPEC §1, nginx's model): starts `server.workers` worker processes as fresh executions
/// of this binary (never a fork of a running Swift runtime), restarts one that dies (backing off when it keeps
/// dying), reloads on SIGHUP (new workers start, then the old ones drain), and drains on SIGTERM/SIGINT.
/// Signal handlers only wake the loop; everything happens on it.
///
/// Each worker gets a control pipe (a socketpair, its end on descriptor 3): the worker reports its figures every
/// second, the master adds them up for the admin socket and sends the gateway-wide `/metrics` text back down,
/// and operators' commands travel the same pipes (see `Master+Admin.swift`).
final class Master {
    struct Child {
        let index: Int
        let generation: Int
        let started: Double
        var draining = false
    }

    let loop: EventLoop
    private(set) var config: GatewayConfiguration
    private let configPath: String?
    let logger: Logger
    private(set) var children: [pid_t: Child] = [:]
    /// Each child's control pipe, until it is reaped.
    private(set) var links: [pid_t: ControlChannel] = [:]
    private(set) var generation = 1
    private(set) var stopping = false
    /// Consecutive quick deaths per worker index, for the restart back-off.
    private var quickDeaths: [Int: Int] = [:]
    private var restarts: [(index: Int, at: Double)] = []
    private var stopDeadline: Double = 0
    private var tickTimer: LoopTimer!
    private var secondTimer: LoopTimer!

    /// Every worker's figures, for `stats`, `tail` and `/metrics`.
    var metrics = GatewayMetrics()
    let requests = WorkerRequests()
    var admin: AdminServer?
    let startedAt: Double
    /// Workers restarted after dying.
    private(set) var restartCount = 0
    /// An operator ran `drain`: workers started from now on drain too, until a reload.
    var clientsDrained = false
    /// Workers that have been sent the `/metrics` text at least once.
    private var metricsSent: Set<pid_t> = []
    /// The keys every worker seals and opens TLS session tickets with, newest first: made here so that a phone
    /// resumes its session on whichever worker (of any generation) its reconnect lands. A new one every
    /// `TLSTicketKey.rotationSeconds`; the previous one still opens the tickets it sealed for as long again.
    private var ticketKeys = [TLSTicketKey.random()]
    private var ticketTimer: LoopTimer!

    /// A worker that dies sooner than this after its start counts as a quick death.
    static let quickDeath = 10.0
    /// A control pipe with this much unsent output skips a second's `/metrics` text (its worker is busy).
    static let metricsBacklog = 256 << 10

    init(config: GatewayConfiguration, configPath: String?, logger: Logger) throws {
        self.config = config
        self.configPath = configPath
        self.logger = logger
        try Self.checkPortsFree(config)
        try Self.checkTLS(config)
        loop = try EventLoop(capacity: 1024)
        startedAt = Posix.monotonicSeconds()
        loop.onSignal(SIGCHLD) { [unowned self] in self.reap() }
        loop.onSignal(SIGTERM) { [unowned self] in self.stop("SIGTERM") }
        loop.onSignal(SIGINT) { [unowned self] in self.stop("SIGINT") }
        loop.onSignal(SIGHUP) { [unowned self] in _ = self.reload() }
        tickTimer = LoopTimer(loop: loop) { [unowned self] in self.tick() }
        secondTimer = LoopTimer(loop: loop) { [unowned self] in self.everySecond() }
        ticketTimer = LoopTimer(loop: loop) { [unowned self] in self.rotateTicketKeys() }
        let admin = try AdminServer(path: config.server.adminSocket, loop: loop, logger: logger)
        admin.onCommand = { [unowned self] in self.adminCommand($0, $1) }
        self.admin = admin
    }

    /// Refuses to start when something already listens on a configured port. The workers bind with SO_REUSEPORT
    /// (so that they, and a reload's new workers beside the old, can share the ports), which would also let a second
    /// gateway of the same user share them silently and split the clients between two gateways.
    static func checkPortsFree(_ config: GatewayConfiguration) throws {
        let listeners =
            [("server.tcp", config.server.tcp), ("server.websocket", config.server.websocket),
             ("server.http", config.server.http)] + config.tlsListeners.map { ($0.key, Optional($0.address)) }
        for case let (key, address?) in listeners where address.port != 0 {
            do {
                try Posix.checkAddressFree(host: address.host, port: address.port, ipv6: address.isIPv6)
            } catch let error as SystemError where error.errno == EADDRINUSE {
                throw StartError(
                    "cannot listen on \(address) (\(key)): address already in use — is another pushgw (or another server) running there?")
            }
        }
    }

    /// Loads the certificate and key of the TLS listeners as a worker will, so that a file that is missing, unreadable
    /// or does not match stops the start (or a reload) with the key named, rather than every worker failing.
    static func checkTLS(_ config: GatewayConfiguration) throws {
        guard !config.tlsListeners.isEmpty else { return }
        do {
            _ = try TLSContext(config)
        } catch {
            throw StartError("configuration error: \(error)")
        }
    }

    func run() -> Int32 {
        for index in 0..<config.server.workers { spawn(index: index) }
        spawnNotifiers()
        tickTimer.start(after: 0.2, repeat: 0.2)
        secondTimer.start(after: 1, repeat: 1)
        ticketTimer.start(after: TLSTicketKey.rotationSeconds, repeat: TLSTicketKey.rotationSeconds)
        logger.info(
            "master running",
            metadata: [
                "pid": "\(Posix.pid())", "workers": "\(config.server.workers)",
                "admin_socket": "\(config.server.adminSocket)",
            ])
        loop.run()
        admin?.close()
        logger.info("master stopped")
        return 0
    }

    // MARK: - Workers

    /// Starts worker `index`, or notifier `index - firstNotifier` (Master+Notifiers.swift).
    func spawn(index: Int) {
        let notifier = index >= Self.firstNotifier
        var arguments = notifier
            ? ["pushgw", "notify", "--index", String(index - Self.firstNotifier)]
            : ["pushgw", "worker", "--index", String(index), "--control-fd", String(Posix.controlDescriptor)]
        if let configPath { arguments += ["--config", configPath] }
        let pid: pid_t
        let mine: Int32
        do {
            let (master, worker) = try Posix.socketPair()
            defer { Posix.close(worker) }
            do {
                pid = try Posix.spawnSelf(arguments, control: worker)
            } catch {
                Posix.close(master)
                throw error
            }
            mine = master
        } catch {
            logger.error("cannot start a worker", metadata: ["index": "\(index)", "error": "\(error)"])
            scheduleRestart(index: index, delay: 1)
            return
        }
        children[pid] = Child(index: index, generation: generation, started: now())
        if notifier { Posix.close(mine) } else { attach(mine, to: pid) }
        logger.info("worker started", metadata: ["index": "\(index)", "pid": "\(pid)", "generation": "\(generation)"])
    }

    /// Puts the master's end of `pid`'s control pipe on the loop, and tells a new worker what operators changed
    /// since the configuration was read.
    private func attach(_ fd: Int32, to pid: pid_t) {
        let link = ControlChannel(fd: fd, loop: loop)
        guard loop.register(fd, link, events: .read) else {
            Posix.close(fd)
            logger.error("no room for a worker's control pipe; it runs unmonitored", metadata: ["pid": "\(pid)"])
            return
        }
        link.onMessage = { [unowned self] in self.received($0, from: pid) }
        link.onClose = { [unowned self] in self.linkClosed(pid, $0) }
        links[pid] = link
        if LogSetup.level != config.log.level {
            link.send(.command(id: 0, name: "log-level", arguments: [LogSetup.level.rawValue]))
        }
        if clientsDrained { link.send(.command(id: 0, name: "drain", arguments: [])) }
        if !config.tlsListeners.isEmpty { link.send(ticketKeysMessage) }
    }

    /// `tls-keys` for a worker: the ticket keys, newest first. Only the control pipes carry them (never a log).
    private var ticketKeysMessage: ControlMessage {
        .command(id: 0, name: "tls-keys", arguments: ticketKeys.map { Base64.encode($0.bytes) })
    }

    private func rotateTicketKeys() {
        ticketKeys = [TLSTicketKey.random(), ticketKeys[0]]
        guard !config.tlsListeners.isEmpty else { return }
        logger.info("TLS session ticket key rotated", metadata: ["workers": "\(links.count)"])
        for link in links.values { link.send(ticketKeysMessage) }
    }

    private func received(_ message: ControlMessage, from pid: pid_t) {
        switch message {
        case .snapshot(var snapshot):
            snapshot.pid = Int(pid)
            if let child = children[pid] { snapshot.index = child.index }
            metrics.record(snapshot)
            // A new worker gets the gateway-wide metrics at once rather than at the next second.
            if !metricsSent.contains(pid), let link = links[pid] {
                metricsSent.insert(pid)
                link.send(.metrics(report().prometheus()))
            }
        case .reply(let id, let lines):
            requests.received(id: id, from: pid, lines: lines)
        case .metrics, .command:
            break
        }
    }

    /// A worker's pipe closed. At exit that is expected (the reaper cleans up); a pipe closed for another
    /// reason (the worker stopped reading it) leaves a worker nobody can see: it is stopped, and restarted.
    private func linkClosed(_ pid: pid_t, _ reason: CloseReason) {
        guard reason != .peerClosed, children[pid] != nil else { return }
        logger.error(
            "lost a worker's control pipe, stopping the worker",
            metadata: ["pid": "\(pid)", "reason": "\(reason.rawValue)"])
        Posix.kill(pid, SIGTERM)
    }

    /// Collects every exited child; restarts a worker of the current generation that was not asked to stop.
    private func reap() {
        while let exited = Posix.reap() {
            let pid = exited.pid
            let status = exited.status
            guard let child = children.removeValue(forKey: pid) else { continue }
            if let link = links.removeValue(forKey: pid) {
                // What the worker wrote before it exited (its last snapshot) is read first, so its final counts
                // join the retired totals.
                if link.isOpen { link.handleEvents(.read) }
                link.close(.peerClosed)
            }
            metricsSent.remove(pid)
            metrics.retire(pid: Int(pid))
            requests.workerGone(pid)
            let how = Self.describe(status)
            if stopping || child.draining || child.generation != generation {
                logger.info(
                    "worker exited", metadata: ["index": "\(child.index)", "pid": "\(pid)", "status": "\(how)"])
                continue
            }
            let quick = now() - child.started < Self.quickDeath
            let deaths = quick ? (quickDeaths[child.index] ?? 0) + 1 : 0
            quickDeaths[child.index] = deaths
            let delay = deaths == 0 ? 0 : min(30, 0.5 * Double(1 << min(deaths, 6)))
            restartCount += 1
            logger.error(
                "worker died, restarting",
                metadata: ["index": "\(child.index)", "pid": "\(pid)", "status": "\(how)", "after_s": "\(delay)"])
            scheduleRestart(index: child.index, delay: delay)
        }
        if stopping && children.isEmpty { loop.stop() }
    }

    private func scheduleRestart(index: Int, delay: Double) {
        restarts.append((index, now() + delay))
    }

    private func tick() {
        let now = now()
        let due = restarts.filter { $0.at <= now }
        restarts.removeAll { $0.at <= now }
        if !stopping { due.forEach { spawn(index: $0.index) } }
        drainDue(now)
        requests.expire(now: now)
        if stopping && now >= stopDeadline && !children.isEmpty {
            logger.warning("workers did not stop in time, killing them", metadata: ["count": "\(children.count)"])
            for pid in children.keys { Posix.kill(pid, SIGKILL) }
            stopDeadline = now + 5
        }
    }

    /// Once a second: the latency history, the `/metrics` text for every worker, a line for every `tail`.
    private func everySecond() {
        metrics.sample()
        let report = report()
        let text = ControlMessage.metrics(report.prometheus()).line
        for (pid, link) in links where link.pendingOutput < Self.metricsBacklog {
            link.send(bytes: text)
            metricsSent.insert(pid)
        }
        let tailing = admin?.tailing ?? []
        if !tailing.isEmpty {
            let line = report.tailLine(time: Self.clockTime())
            for client in tailing { client.send(line: line) }
        }
        LogSetup.reportSuppressed(logger)
    }

    /// The figures as of now.
    func report() -> GatewayReport {
        // Workers only: notifiers send no snapshots (their figures are in /metrics through Redis).
        let processes = children.filter { $0.value.index < Self.firstNotifier }.map { pid, child in
            GatewayReport.Process(
                pid: Int(pid), index: child.index, generation: child.generation,
                stopping: stopping || child.draining || child.generation != generation)
        }
        return GatewayReport(
            metrics: metrics, processes: processes, uptime: now() - startedAt, generation: generation,
            draining: clientsDrained, restarts: restartCount)
    }

    /// Live workers of the current generation that are not stopping.
    var currentWorkers: [pid_t] {
        children.filter {
            $0.value.generation == generation && !$0.value.draining && $0.value.index < Self.firstNotifier
        }.sorted {
            $0.value.index < $1.value.index
        }
        .map(\.key)
    }

    // MARK: - Signals

    private func stop(_ signal: String) {
        guard !stopping else { return }
        stopping = true
        restarts.removeAll()
        logger.info("stopping: draining workers", metadata: ["signal": "\(signal)", "workers": "\(children.count)"])
        for pid in children.keys { Posix.kill(pid, SIGTERM) }
        stopDeadline = now() + config.server.drainTimeout + 5
        if children.isEmpty { loop.stop() }
    }

    /// SIGHUP or `reload`: re-reads the configuration; when it is valid, a new generation of workers starts and,
    /// a moment later, the old one drains (SO_REUSEPORT lets both listen meanwhile, so no connection is refused).
    /// When the configuration is unchanged and TLS is on, the workers reload the certificate files in place instead.
    /// The log level and a `drain` set by operators are reset to what the configuration says. Returns why the
    /// reload was refused, or nil.
    @discardableResult
    func reload() -> String? {
        guard !stopping else { return "the gateway is stopping" }
        do {
            let (fresh, warnings) = try GatewayConfiguration.load(
                path: configPath, environment: Posix.environment(), cores: Posix.cores())
            warnings.forEach { logger.warning("\($0)") }
            // The certificate files are read again: new ones must load before the workers are replaced.
            try Self.checkTLS(fresh)
            if fresh.server.adminSocket != config.server.adminSocket {
                logger.warning(
                    "server.admin_socket changes only at restart", metadata: ["serving": "\(config.server.adminSocket)"]
                )
            }
            // Only the certificate files' contents changed (a renewal): the workers load them in place, so no
            // connection is dropped (SPEC §8). Anything else replaces the workers, as does a drain to undo.
            if fresh == config, !config.tlsListeners.isEmpty, !clientsDrained {
                LogSetup.setLevel(config.log.level)
                logger.info("reloading the TLS certificate in place", metadata: ["workers": "\(links.count)"])
                for link in links.values {
                    link.send(.command(id: 0, name: "log-level", arguments: [config.log.level.rawValue]))
                    link.send(.command(id: 0, name: "tls-reload", arguments: []))
                }
                return nil
            }
            config = fresh
        } catch {
            logger.error(
                "reload refused: configuration error, the running workers stay", metadata: ["error": "\(error)"])
            return "configuration error, the running workers stay: \(error)"
        }
        LogSetup.setLevel(config.log.level)
        clientsDrained = false
        let old = children.filter { $0.value.generation == generation }.map(\.key)
        generation += 1
        restarts.removeAll()
        logger.info("reloading", metadata: ["generation": "\(generation)", "old_workers": "\(old.count)"])
        for index in 0..<config.server.workers { spawn(index: index) }
        spawnNotifiers()
        // Give the new workers a moment to bind before the old ones close their listeners.
        pendingDrains.append((old, now() + 1.0))
        return nil
    }

    /// Old workers to drain once their successors have had time to listen.
    private var pendingDrains: [(pids: [pid_t], at: Double)] = []

    private func drainDue(_ now: Double) {
        for entry in pendingDrains where entry.at <= now {
            for pid in entry.pids where children[pid] != nil {
                children[pid]?.draining = true
                Posix.kill(pid, SIGTERM)
            }
        }
        pendingDrains.removeAll { $0.at <= now }
    }

    func now() -> Double { Posix.monotonicSeconds() }
}

/// A reason the master cannot start, said as is.
struct StartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
