// A private redis-server on a free loopback port for a test or a gateway, and which Redis a gateway uses.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

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
    /// A Redis Cluster the test started (`redis.cluster` = these seeds, `host:port,…`); `redis.url` is unused.
    case redisCluster(seeds: String)
}

/// Which storage a test's gateways run on: one redis-server, or a local Redis Cluster of three masters with a
/// replica each (SPEC §9). Tests that check storage, ordering and routing run on both.
enum TestStorage: String, CaseIterable, CustomStringConvertible, Sendable {
    case server
    case cluster

    var description: String { rawValue }
}
