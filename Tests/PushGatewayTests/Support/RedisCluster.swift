// A local Redis Cluster for the tests (SPEC §9): three masters and three replicas on free loopback ports, made with
// `redis-cli --cluster create`, as an operator would make one.
import Foundation
import PushCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

final class RedisCluster: @unchecked Sendable {
    /// The six nodes, masters first as `redis-cli --cluster create` was given them (a failover may swap roles).
    let nodes: [RedisServer]
    let directory: URL

    /// `redis.cluster`'s value for these nodes.
    var seeds: String { nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    static let cli = findExecutable("redis-cli")

    private init(nodes: [RedisServer], directory: URL) {
        self.nodes = nodes
        self.directory = directory
    }

    /// Starts six cluster-enabled servers (`cluster-node-timeout` 1 s, so a failover takes a few seconds), joins
    /// them with one replica per master and waits (at most 30 s) until every node reports `cluster_state:ok`.
    static func start(in directory: URL) async throws -> RedisCluster {
        guard let cli else { throw TestError("redis-cli not found on PATH") }
        var nodes: [RedisServer] = []
        do {
            for index in 0..<6 {
                let dir = directory.appendingPathComponent("node\(index)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                nodes.append(
                    try await RedisServer.start(
                        in: dir, port: try freeClusterPort(),
                        arguments: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-node-timeout", "1000"]))
            }
            let log = directory.appendingPathComponent("cluster-create.log").path
            let create = try ChildProcess(
                argv: [cli, "--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" }
                    + ["--cluster-replicas", "1", "--cluster-yes"],
                environment: ["PATH=/usr/bin:/bin"], stdoutPath: log, stderrPath: log)
            guard create.waitForExit(timeout: 60) else {
                create.killGroup()
                throw TestError("redis-cli --cluster create did not finish: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            let cluster = RedisCluster(nodes: nodes, directory: directory)
            let ready = try await eventually(timeout: 30) {
                cluster.nodes.allSatisfy { node in
                    ((try? redisCall(port: node.port, ["CLUSTER", "INFO"])) ?? "").contains("cluster_state:ok")
                }
            }
            guard ready else {
                throw TestError("the cluster did not reach cluster_state:ok: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            return cluster
        } catch {
            for node in nodes { node.stop() }
            throw error
        }
    }

    func stop() {
        for node in nodes { node.stop() }
    }

    /// A free loopback port whose cluster bus port (port + 10000) is free too.
    private static func freeClusterPort() throws -> UInt16 {
        for _ in 0..<200 {
            let port = try freeLoopbackPort()
            if port <= 55535 && canBind(port + 10000) { return port }
        }
        throw TestError("no free port with a free cluster bus port")
    }

    private static func canBind(_ port: UInt16) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { return false }
        defer { Glibc.close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

/// One command to 127.0.0.1:`port`, the whole reply decoded (PushCore's RESP decoder).
func redisValue(port: UInt16, _ args: [String]) throws -> RedisValue {
    let socket = try TestSocket(port: port)
    defer { socket.close() }
    try socket.sendAll(RESP.encodeCommand(args))
    var decoder = RESPDecoder()
    let deadline = Date().addingTimeInterval(5)
    while true {
        decoder.feed(socket.inbound)
        socket.inbound.removeAll()
        if let value = try decoder.next() { return value }
        guard try socket.fill(until: deadline) == .data else { throw TestError("no reply from Redis to \(args)") }
    }
}
