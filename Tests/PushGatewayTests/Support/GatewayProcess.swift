// Starts the built `pushgw` binary (and a private redis-server for it) on free loopback ports and stops them.
import Foundation
import PushCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One running `pushgw serve`, in a temporary working directory (so it never reads the repository's
/// Config/pushgw.toml unless told to), with its stderr captured to a file (stdout to another).
final class GatewayProcess: @unchecked Sendable {
    let tcpPort: UInt16
    let httpPort: UInt16
    /// The WebSocket listener's port, when the gateway was started with one (`start(webSocket: true)`).
    let webSocketPort: UInt16?
    /// The TLS listeners' ports, when the gateway was started with them (`start(tls: true)`).
    let tlsPorts: TLSPorts?
    let directory: URL
    let logURL: URL
    let process: ChildProcess
    let redisURL: String
    /// Whether `startRedis` starts a persistent server (`RedisChoice.persistentServer`).
    let redisPersistent: Bool
    private var redisServer: RedisServer?
    /// The Redis Cluster started for this gateway alone (``start(_:on:)``).
    private var ownedRedisCluster: RedisCluster?
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
        tcp: UInt16, http: UInt16, webSocket: UInt16?, tls: TLSPorts? = nil, directory: URL, redisURL: String,
        overrides: [String: String]
    ) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PUSHGW_") }
        env["PUSHGW_SERVER_TCP"] = "127.0.0.1:\(tcp)"
        env["PUSHGW_SERVER_HTTP"] = "127.0.0.1:\(http)"
        env["PUSHGW_SERVER_WEBSOCKET"] = webSocket.map { "127.0.0.1:\($0)" } ?? ""
        env["PUSHGW_SERVER_WORKERS"] = "1"
        // No notifier unless a test asks (FakeProviders.gatewaySettings): the tests count the master's children.
        env["PUSHGW_NOTIFY_WORKERS"] = "0"
        // Tests stop gateways with clients still connected: drain them in 1 s, not the default 10.
        env["PUSHGW_SERVER_DRAIN_TIMEOUT"] = "1"
        env["PUSHGW_SERVER_ADMIN_SOCKET"] = directory.appendingPathComponent("pushgw.sock").path
        env["PUSHGW_REDIS_URL"] = redisURL
        if let tls { env.merge(tls.environment) { $1 } }
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
        case .redisCluster:
            return (nil, "redis://127.0.0.1:\(try freeLoopbackPort())")
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
        tcpPort: UInt16, httpPort: UInt16, webSocketPort: UInt16? = nil, tlsPorts: TLSPorts? = nil, directory: URL,
        redis: RedisServer?, redisURL: String, overrides: [String: String], arguments: [String], blocked: [Int32]
    ) throws {
        self.tcpPort = tcpPort
        self.httpPort = httpPort
        self.webSocketPort = webSocketPort
        self.tlsPorts = tlsPorts
        self.directory = directory
        self.redisServer = redis
        self.redisURL = redisURL
        redisPersistent = redis?.persistent ?? false
        logURL = directory.appendingPathComponent("stderr.log")
        let environment = Self.environment(
            tcp: tcpPort, http: httpPort, webSocket: webSocketPort, tls: tlsPorts, directory: directory,
            redisURL: redisURL, overrides: overrides)
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
    /// `blocked`: signals blocked in the mask it inherits. `tls`: the three TLS listeners too, with the test
    /// certificate (TLSSupport.swift) unless `overrides` name other files.
    static func start(
        _ overrides: [String: String] = [:], arguments: [String] = [], redis choice: RedisChoice = .privateServer,
        blocked: [Int32] = [], webSocket: Bool = false, tls: Bool = false
    ) async throws -> GatewayProcess {
        var lastLog = ""
        var overrides = overrides
        if case .redisCluster(let seeds) = choice { overrides["PUSHGW_REDIS_CLUSTER"] = seeds }
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
            let tlsPorts = tls ? try TLSPorts(avoiding: [tcp, http] + (ws.map { [$0] } ?? [])) : nil
            let gateway = try GatewayProcess(
                tcpPort: tcp, httpPort: http, webSocketPort: ws, tlsPorts: tlsPorts, directory: directory, redis: redis,
                redisURL: redisURL, overrides: overrides, arguments: arguments, blocked: blocked)
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && gateway.process.isRunning {
                if portAccepts(tcp) && portAccepts(http) && ws.map(portAccepts) != false
                    && tlsPorts?.all.allSatisfy(portAccepts) != false
                {
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

    /// The Redis Cluster started for it (``start(_:on:)``), if it runs on one.
    var redisCluster: RedisCluster? { lock.withLock { ownedRedisCluster } }

    /// One command to the Redis it stores in: its server, or the node of its cluster that serves `key` (the one
    /// that does not answer MOVED).
    func redisValue(_ args: [String], key: String) throws -> RedisValue {
        if let server = redis { return try PushGatewayTests.redisValue(port: server.port, args) }
        guard let cluster = redisCluster else { throw TestError("the gateway has no Redis of its own") }
        for port in cluster.ports {
            let value = try PushGatewayTests.redisValue(port: port, args)
            if case .error(let text) = value, text.hasPrefix("MOVED") { continue }
            return value
        }
        throw TestError("no node of the cluster serves \(key)")
    }

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
        lock.withLock { ownedRedisCluster }?.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A gateway on `storage`: its private redis-server, or a Redis Cluster of its own, stopped with it.
    static func start(_ overrides: [String: String] = [:], on storage: TestStorage) async throws -> GatewayProcess {
        guard storage == .cluster else { return try await start(overrides) }
        let cluster = try await RedisCluster.start(in: try makeDirectory())
        do {
            let gateway = try await start(overrides, redis: .redisCluster(seeds: cluster.seeds))
            gateway.lock.withLock { gateway.ownedRedisCluster = cluster }
            return gateway
        } catch {
            cluster.stop()
            throw error
        }
    }
}

/// The ports of the three TLS listeners of a test gateway.
struct TLSPorts: Sendable {
    let tls: UInt16
    let wss: UInt16
    let https: UInt16

    var all: [UInt16] { [tls, wss, https] }

    /// Three free loopback ports, none of `taken`.
    init(avoiding taken: [UInt16]) throws {
        var ports: [UInt16] = []
        while ports.count < 3 {
            let port = try freeLoopbackPort()
            if !taken.contains(port) && !ports.contains(port) { ports.append(port) }
        }
        (tls, wss, https) = (ports[0], ports[1], ports[2])
    }

    /// The listeners on these ports, with the test certificate.
    var environment: [String: String] {
        let certificates = try? TestCertificates.shared()
        return [
            "PUSHGW_SERVER_TLS": "127.0.0.1:\(tls)", "PUSHGW_SERVER_WSS": "127.0.0.1:\(wss)",
            "PUSHGW_SERVER_HTTPS": "127.0.0.1:\(https)", "PUSHGW_TLS_CERT": certificates?.chainFile ?? "",
            "PUSHGW_TLS_KEY": certificates?.keyFile ?? "",
        ]
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
