// Starts the built `pushgw` binary (and a private redis-server for it) on free loopback ports and stops them.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
enum ExitState: Equatable, CustomStringConvertible {
    case running
    case exited(Int32)
    case signaled(Int32)

    var description: String {
        switch self {
        case .running: "running"
        case .exited(let code): "exit status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// Process groups of the children still running, killed when the test runner exits normally (a test that
/// throws past its `defer` still stops them, this is the last resort).
final class ChildRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var pids: Set<pid_t> = []
    private var registeredExitHook = false

    func add(_ pid: pid_t) {
        lock.withLock {
            pids.insert(pid)
            if !registeredExitHook {
                registeredExitHook = true
                atexit { liveChildren.killAll() }
            }
        }
    }

    func remove(_ pid: pid_t) { _ = lock.withLock { pids.remove(pid) } }

    func killAll() {
        for pid in lock.withLock({ pids }) {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
    }
}

let liveChildren = ChildRegistry()

/// A child spawned with posix_spawn and reaped with waitpid. It leads its own process group, starts with default
/// signal dispositions and a mask blocking only `blocked` — not the spawning thread's mask: Swift-concurrency and
/// Dispatch threads block SIGTERM, SIGINT, SIGHUP and more, and a child would inherit that (this is also why
/// Foundation's Process is not used: the gateway it started never saw the SIGTERM).
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var state = ExitState.running

    init(argv: [String], environment: [String], stdoutPath: String, stderrPath: String, blocked: [Int32] = []) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in blocked { sigaddset(&mask, signal) }
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArgv, cEnv)
        guard rc == 0 else { throw TestError("posix_spawn \(argv): \(errnoText(rc))") }
        self.pid = pid
        liveChildren.add(pid)
    }

    /// Reaps the child if it has exited (never blocks).
    var exitState: ExitState {
        lock.withLock {
            if state == .running {
                var status: Int32 = 0
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid {
                    state = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
                } else if r < 0 && errno == ECHILD {
                    state = .exited(-1)
                }
            }
            return state
        }
    }

    var isRunning: Bool { exitState == .running }

    func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits (blocking, polling) up to `timeout` seconds for the exit; returns whether it exited.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { usleep(2_000) }
        return !isRunning
    }

    /// SIGKILL to the child and anything left in its process group, then reap it.
    func killGroup() {
        if isRunning { kill(pid, SIGKILL) }
        kill(-pid, SIGKILL)
        _ = waitForExit(timeout: 5)
        liveChildren.remove(pid)
    }
}

/// Searches PATH for an executable.
func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// A private, throw-away redis-server on a free loopback port (no persistence unless `persistent`), so every gateway
/// gets an empty database and pub/sub channels (`pg:all`, node channels) no other test shares.
final class RedisServer: @unchecked Sendable {
    let port: UInt16
    let process: ChildProcess
    let logPath: String
    /// Whether it keeps its data across a restart in the same directory: an append-only file fsynced before every
    /// reply (`--appendonly yes --appendfsync always`), so whatever it acknowledged survives even SIGKILL.
    let persistent: Bool

    var url: String { "redis://127.0.0.1:\(port)" }

    static let executable = findExecutable("redis-server")

    private init(executable: String, directory: URL, port: UInt16, persistent: Bool) throws {
        self.port = port
        self.persistent = persistent
        logPath = directory.appendingPathComponent("redis.log").path
        let persistence = persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]
        process = try ChildProcess(
            argv: [executable, "--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory.path, "--save", ""]
                + persistence + ["--daemonize", "no", "--logfile", ""],
            environment: ["PATH=/usr/bin:/bin"], stdoutPath: logPath, stderrPath: logPath)
    }

    /// Starts one in `directory` (on `port`, else a free one) and waits (at most 10 s) until it answers PING.
    /// `persistent`: see the property; a persistent server started again in the same directory loads what the
    /// previous one acknowledged.
    static func start(in directory: URL, port: UInt16? = nil, persistent: Bool = false) async throws -> RedisServer {
        guard let executable else { throw TestError("redis-server not found on PATH") }
        var log = ""
        for _ in 1...3 {
            let server = try RedisServer(
                executable: executable, directory: directory, port: try port ?? freeLoopbackPort(),
                persistent: persistent)
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && server.process.isRunning {
                if server.answersPing() { return server }
                try await pause(0.02)
            }
            log = (try? String(contentsOfFile: server.logPath, encoding: .utf8)) ?? ""
            server.stop()
        }
        throw TestError("redis-server did not start; log:\n\(log.suffix(2000))")
    }

    func answersPing() -> Bool {
        guard portAccepts(port), let socket = try? TestSocket(port: port, timeout: 1) else { return false }
        defer { socket.close() }
        guard (try? socket.sendAll(Array("PING\r\n".utf8))) != nil else { return false }
        let deadline = Date().addingTimeInterval(1)
        while socket.inbound.count < 7 {
            guard (try? socket.fill(until: deadline)) == .data else { return false }
        }
        return socket.inbound.starts(with: Array("+PONG".utf8))
    }

    func stop() {
        process.signal(SIGTERM)
        if !process.waitForExit(timeout: 3) { Swift.print("redis-server \(port) ignored SIGTERM") }
        process.killGroup()
    }

    /// SIGKILL: a crash, no goodbye to its clients and no final write.
    func kill() {
        process.killGroup()
    }
}

/// Which Redis a gateway uses.
enum RedisChoice: Sendable {
    /// A private redis-server started for this gateway (if redis-server is on PATH; else $PUSHGW_TEST_REDIS_URL,
    /// shared).
    case privateServer
    /// A private redis-server with an append-only file fsynced before every reply, so that `stopRedis` then
    /// `startRedis` (same port, same directory) keeps everything it acknowledged. Needs redis-server on PATH.
    case persistentServer
    /// A loopback port nothing listens on: Redis is down.
    case unreachable
    /// A redis-server the test started and owns (several gateways on one Redis act as one gateway); the gateway
    /// neither stops nor restarts it.
    case shared(RedisServer)
}

/// One running `pushgw serve`, in a temporary working directory (so it never reads the repository's
/// Config/pushgw.toml unless told to), with its stderr captured to a file (stdout to another).
final class GatewayProcess: @unchecked Sendable {
    let tcpPort: UInt16
    let httpPort: UInt16
    /// The WebSocket listener's port, when the gateway was started with one (`start(webSocket: true)`).
    let webSocketPort: UInt16?
    let directory: URL
    let logURL: URL
    let process: ChildProcess
    let redisURL: String
    /// Whether `startRedis` starts a persistent server (`RedisChoice.persistentServer`).
    let redisPersistent: Bool
    private var redisServer: RedisServer?
    private let lock = NSLock()
    private var stopped = false
    private var terminated = false

    var pid: pid_t { process.pid }

    /// The binary under test: $PUSHGW_BIN, else `pushgw` next to the test runner (same build directory),
    /// else `.build/debug/pushgw` in the current directory or the package root.
    static let binaryPath: String = {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["PUSHGW_BIN"], !path.isEmpty { return path }
        let fm = FileManager.default
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let candidate = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("pushgw").path
            if fm.isExecutableFile(atPath: candidate) { return candidate }
        }
        let relative = fm.currentDirectoryPath + "/.build/debug/pushgw"
        if fm.isExecutableFile(atPath: relative) { return relative }
        return packageRoot.appendingPathComponent(".build/debug/pushgw").path
    }()

    /// Tests/PushGatewayTests/Support/GatewayProcess.swift → the package root.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The repository's shipped config file.
    static let shippedConfigPath = packageRoot.appendingPathComponent("Config/pushgw.toml").path

    /// The environment a gateway gets: ours without any PUSHGW_* variable, then loopback listeners on the given
    /// ports (WebSocket off without one), one worker, the admin socket in the temp dir, Redis, then `overrides`.
    static func environment(
        tcp: UInt16, http: UInt16, webSocket: UInt16?, directory: URL, redisURL: String, overrides: [String: String]
    ) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PUSHGW_") }
        env["PUSHGW_SERVER_TCP"] = "127.0.0.1:\(tcp)"
        env["PUSHGW_SERVER_HTTP"] = "127.0.0.1:\(http)"
        env["PUSHGW_SERVER_WEBSOCKET"] = webSocket.map { "127.0.0.1:\($0)" } ?? ""
        env["PUSHGW_SERVER_WORKERS"] = "1"
        // Tests stop gateways with clients still connected: drain them in 1 s, not the default 10.
        env["PUSHGW_SERVER_DRAIN_TIMEOUT"] = "1"
        env["PUSHGW_SERVER_ADMIN_SOCKET"] = directory.appendingPathComponent("pushgw.sock").path
        env["PUSHGW_REDIS_URL"] = redisURL
        for (key, value) in overrides { env[key] = value }
        return env
    }

    private static func makeDirectory() throws -> URL {
        let name = "pushgw-it-" + UUID().uuidString.prefix(8).lowercased()
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The Redis for a new gateway: a started private server, or a URL.
    private static func redis(_ choice: RedisChoice, in directory: URL) async throws -> (RedisServer?, String) {
        switch choice {
        case .unreachable:
            return (nil, "redis://127.0.0.1:\(try freeLoopbackPort())")
        case .shared(let server):
            return (nil, server.url)
        case .persistentServer:
            let server = try await RedisServer.start(in: directory, persistent: true)
            return (server, server.url)
        case .privateServer:
            if RedisServer.executable != nil {
                let server = try await RedisServer.start(in: directory)
                return (server, server.url)
            }
            if let url = ProcessInfo.processInfo.environment["PUSHGW_TEST_REDIS_URL"], !url.isEmpty {
                return (nil, url)
            }
            throw TestError("no redis-server on PATH and PUSHGW_TEST_REDIS_URL is not set")
        }
    }

    private init(
        tcpPort: UInt16, httpPort: UInt16, webSocketPort: UInt16? = nil, directory: URL, redis: RedisServer?,
        redisURL: String, overrides: [String: String], arguments: [String], blocked: [Int32]
    ) throws {
        self.tcpPort = tcpPort
        self.httpPort = httpPort
        self.webSocketPort = webSocketPort
        self.directory = directory
        self.redisServer = redis
        self.redisURL = redisURL
        redisPersistent = redis?.persistent ?? false
        logURL = directory.appendingPathComponent("stderr.log")
        let environment = Self.environment(
            tcp: tcpPort, http: httpPort, webSocket: webSocketPort, directory: directory, redisURL: redisURL,
            overrides: overrides)
        // sh changes to the temp directory, then execs the gateway (same pid).
        let argv =
            ["/bin/sh", "-c", "cd \"$1\" && shift && exec \"$@\"", "sh", directory.path, Self.binaryPath, "serve"]
            + arguments
        process = try ChildProcess(
            argv: argv, environment: environment.map { "\($0.key)=\($0.value)" },
            stdoutPath: directory.appendingPathComponent("stdout.log").path, stderrPath: logURL.path, blocked: blocked)
    }

    deinit { stop(reportCrash: false) }

    /// Starts a gateway with `overrides` (PUSHGW_* variables) and extra `serve` arguments, and waits (at most
    /// 10 s) until its TCP and HTTP ports (and WebSocket port, with `webSocket`) accept and, with a Redis,
    /// GET /healthz answers 200. Retries with new ports if it exits at start (a port taken meanwhile).
    /// `blocked`: signals blocked in the mask it inherits.
    static func start(
        _ overrides: [String: String] = [:], arguments: [String] = [], redis choice: RedisChoice = .privateServer,
        blocked: [Int32] = [], webSocket: Bool = false
    ) async throws -> GatewayProcess {
        var lastLog = ""
        for _ in 1...3 {
            let directory = try makeDirectory()
            let (redis, redisURL) = try await Self.redis(choice, in: directory)
            let tcp = try freeLoopbackPort()
            var http = try freeLoopbackPort()
            while http == tcp { http = try freeLoopbackPort() }
            var ws: UInt16?
            if webSocket {
                var port = try freeLoopbackPort()
                while port == tcp || port == http { port = try freeLoopbackPort() }
                ws = port
            }
            let gateway = try GatewayProcess(
                tcpPort: tcp, httpPort: http, webSocketPort: ws, directory: directory, redis: redis,
                redisURL: redisURL, overrides: overrides, arguments: arguments, blocked: blocked)
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && gateway.process.isRunning {
                if portAccepts(tcp) && portAccepts(http) && ws.map(portAccepts) != false {
                    if case .unreachable = choice { return gateway }
                    let health = try? await gateway.http(HTTP.request("GET", "/healthz"))
                    if health?.status == 200 { return gateway }
                }
                try await pause(0.02)
            }
            lastLog = gateway.log
            let running = gateway.process.isRunning
            gateway.stop(reportCrash: false)
            if running {
                throw TestError("gateway not ready (ports, /healthz 200) within 10 s; log:\n\(lastLog.suffix(4000))")
            }
        }
        throw TestError("gateway exited at start three times; last log:\n\(lastLog.suffix(4000))")
    }

    /// Runs `pushgw serve` with `overrides` expecting it to exit by itself within `timeout` seconds; returns how it
    /// ended (`.running` if it did not, then it is killed) and its stderr.
    static func runToExit(_ overrides: [String: String] = [:], arguments: [String] = [], timeout: Double = 10)
        async throws -> (state: ExitState, log: String)
    {
        let directory = try makeDirectory()
        let gateway = try GatewayProcess(
            tcpPort: try freeLoopbackPort(), httpPort: try freeLoopbackPort(), directory: directory, redis: nil,
            redisURL: "redis://127.0.0.1:\(try freeLoopbackPort())", overrides: overrides, arguments: arguments,
            blocked: [])
        _ = try await eventually(timeout: timeout) { !gateway.process.isRunning }
        let state = gateway.process.exitState
        let log = gateway.log
        gateway.stop(reportCrash: false)
        return (state, log)
    }

    /// What the gateway wrote to stderr so far.
    var log: String {
        (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
    }

    var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits up to `timeout` seconds for the gateway to exit; returns how it ended (`.running`
    /// if it did not).
    func signalAndWait(_ signal: Int32 = SIGTERM, timeout: Double = 5) async throws -> ExitState {
        lock.withLock { terminated = true }
        process.signal(signal)
        _ = try await eventually(timeout: timeout) { !process.isRunning }
        return process.exitState
    }

    /// The private Redis, if it has one and it is running.
    var redis: RedisServer? { lock.withLock { redisServer } }

    /// Stops the private Redis (Redis down): SIGTERM, or SIGKILL (a crash) when `kill`.
    func stopRedis(kill: Bool = false) {
        let server = lock.withLock {
            defer { redisServer = nil }
            return redisServer
        }
        if kill { server?.kill() } else { server?.stop() }
    }

    /// Starts a private Redis again on the port of `redisURL`, in the gateway's directory (a persistent one loads
    /// what the previous one stored).
    func startRedis() async throws {
        guard let port = redisURL.split(separator: ":").last.flatMap({ UInt16($0) }) else {
            throw TestError("no port in \(redisURL)")
        }
        let server = try await RedisServer.start(in: directory, port: port, persistent: redisPersistent)
        lock.withLock { redisServer = server }
    }

    /// Stops the gateway (SIGTERM, up to 5 s, then SIGKILL to its process group) and its Redis. Records a test
    /// issue, with the log, if it had already died by itself or ignored SIGTERM.
    func stop() { stop(reportCrash: true) }

    private func stop(reportCrash: Bool) {
        let first: Bool = lock.withLock {
            if stopped { return false }
            stopped = true
            return true
        }
        guard first else { return }
        let before = process.exitState
        let signalledByTest = lock.withLock { terminated }
        if before == .running {
            // A test that already signalled it and waited has reported the outcome: go straight to SIGKILL.
            if !signalledByTest {
                process.signal(SIGTERM)
                if !process.waitForExit(timeout: 5) && reportCrash {
                    Issue.record("gateway did not stop within 5 s of SIGTERM; log:\n\(log.suffix(4000))")
                }
            }
        } else if reportCrash && !signalledByTest {
            Issue.record("gateway ended before the test stopped it (\(before)); log:\n\(log.suffix(4000))")
        }
        process.killGroup()
        lock.withLock { redisServer }?.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

// MARK: - HTTP shortcuts

extension GatewayProcess {
    /// One request on a fresh connection.
    func http(_ request: [UInt8]) async throws -> HTTPResponse {
        let connection = try await HTTPConnection.connect(self)
        defer { connection.close() }
        return try await connection.roundTrip(request)
    }

    /// POST /v1/push with `body` on a fresh connection.
    func push(_ body: String, apiKey: String? = nil) async throws -> HTTPResponse {
        try await http(HTTP.request("POST", "/v1/push", body: body, apiKey: apiKey))
    }
}

