import Glibc
import Logging
import PushCore

/// The master process (SPEC §1, nginx's model): starts `server.workers` worker processes as fresh executions
/// of this binary (never a fork of a running Swift runtime), restarts one that dies (backing off when it keeps
/// dying), reloads on SIGHUP (new workers start, then the old ones drain), and drains on SIGTERM/SIGINT.
/// Signal handlers only wake the loop; everything happens on it.
final class Master {
    private struct Child {
        let index: Int
        let generation: Int
        let started: Double
        var draining = false
    }

    private let loop: EventLoop
    private var config: GatewayConfiguration
    private let configPath: String?
    private let logger: Logger
    private var children: [pid_t: Child] = [:]
    private var generation = 1
    private var stopping = false
    /// Consecutive quick deaths per worker index, for the restart back-off.
    private var quickDeaths: [Int: Int] = [:]
    private var restarts: [(index: Int, at: Double)] = []
    private var stopDeadline: Double = 0
    private var tickTimer: LoopTimer!

    /// A worker that dies sooner than this after its start counts as a quick death.
    static let quickDeath = 10.0

    init(config: GatewayConfiguration, configPath: String?, logger: Logger) throws {
        self.config = config
        self.configPath = configPath
        self.logger = logger
        loop = try EventLoop(capacity: 1024)
        loop.onSignal(SIGCHLD) { [unowned self] in self.reap() }
        loop.onSignal(SIGTERM) { [unowned self] in self.stop("SIGTERM") }
        loop.onSignal(SIGINT) { [unowned self] in self.stop("SIGINT") }
        loop.onSignal(SIGHUP) { [unowned self] in self.reload() }
        tickTimer = LoopTimer(loop: loop) { [unowned self] in self.tick() }
    }

    func run() -> Int32 {
        for index in 0..<config.server.workers { spawn(index: index) }
        tickTimer.start(after: 0.2, repeat: 0.2)
        logger.info("master running", metadata: ["pid": "\(getpid())", "workers": "\(config.server.workers)"])
        loop.run()
        logger.info("master stopped")
        return 0
    }

    // MARK: - Workers

    private func spawn(index: Int) {
        var arguments = ["pushgw", "worker", "--index", String(index)]
        if let configPath { arguments += ["--config", configPath] }
        do {
            let pid = try Posix.spawnSelf(arguments)
            children[pid] = Child(index: index, generation: generation, started: now())
            logger.info("worker started", metadata: ["index": "\(index)", "pid": "\(pid)", "generation": "\(generation)"])
        } catch {
            logger.error("cannot start a worker", metadata: ["index": "\(index)", "error": "\(error)"])
            scheduleRestart(index: index, delay: 1)
        }
    }

    /// Collects every exited child; restarts a worker of the current generation that was not asked to stop.
    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { break }
            guard let child = children.removeValue(forKey: pid) else { continue }
            let how = Self.describe(status)
            if stopping || child.draining || child.generation != generation {
                logger.info("worker exited", metadata: ["index": "\(child.index)", "pid": "\(pid)", "status": "\(how)"])
                continue
            }
            let quick = now() - child.started < Self.quickDeath
            let deaths = quick ? (quickDeaths[child.index] ?? 0) + 1 : 0
            quickDeaths[child.index] = deaths
            let delay = deaths == 0 ? 0 : min(30, 0.5 * Double(1 << min(deaths, 6)))
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
        if stopping && now >= stopDeadline && !children.isEmpty {
            logger.warning("workers did not stop in time, killing them", metadata: ["count": "\(children.count)"])
            for pid in children.keys { kill(pid, SIGKILL) }
            stopDeadline = now + 5
        }
    }

    // MARK: - Signals

    private func stop(_ signal: String) {
        guard !stopping else { return }
        stopping = true
        restarts.removeAll()
        logger.info("stopping: draining workers", metadata: ["signal": "\(signal)", "workers": "\(children.count)"])
        for pid in children.keys { kill(pid, SIGTERM) }
        stopDeadline = now() + config.server.drainTimeout + 5
        if children.isEmpty { loop.stop() }
    }

    /// SIGHUP: re-reads the configuration; when it is valid, a new generation of workers starts and, a moment
    /// later, the old one drains (SO_REUSEPORT lets both listen meanwhile, so no connection is refused).
    private func reload() {
        guard !stopping else { return }
        do {
            let (fresh, warnings) = try GatewayConfiguration.load(
                path: configPath, environment: Posix.environment(), cores: Posix.cores())
            warnings.forEach { logger.warning("\($0)") }
            config = fresh
        } catch {
            logger.error("reload refused: configuration error, the running workers stay", metadata: ["error": "\(error)"])
            return
        }
        let old = children.filter { $0.value.generation == generation }.map(\.key)
        generation += 1
        restarts.removeAll()
        logger.info("reloading", metadata: ["generation": "\(generation)", "old_workers": "\(old.count)"])
        for index in 0..<config.server.workers { spawn(index: index) }
        // Give the new workers a moment to bind before the old ones close their listeners.
        pendingDrains.append((old, now() + 1.0))
    }

    /// Old workers to drain once their successors have had time to listen.
    private var pendingDrains: [(pids: [pid_t], at: Double)] = []

    private func drainDue(_ now: Double) {
        for entry in pendingDrains where entry.at <= now {
            for pid in entry.pids where children[pid] != nil {
                children[pid]?.draining = true
                kill(pid, SIGTERM)
            }
        }
        pendingDrains.removeAll { $0.at <= now }
    }

    private func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    private static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit \((status >> 8) & 0xff)" }
        return "signal \(signal)"
    }
}
