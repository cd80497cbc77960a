// A local Redis Cluster of its own for a test (SPEC §9): three masters and three replicas on free loopback ports,
// made by Scripts/lib.sh's start_redis_cluster (the one Scripts/test starts for the suite as well), as an operator
// would make one with `redis-cli --cluster create`. Its own, so a test may kill a node.
import Foundation
import PushCore
import Testing

final class RedisCluster: @unchecked Sendable {
    let directory: URL
    /// `redis.cluster`'s value: the six nodes, masters first as they were created (a failover may swap roles).
    let seeds: String
    var ports: [UInt16] { seeds.split(separator: ",").compactMap { $0.split(separator: ":").last.flatMap { UInt16($0) } } }

    private init(directory: URL, seeds: String) {
        self.directory = directory
        self.seeds = seeds
    }

    /// Starts it in `directory` and waits until every node reports `cluster_state:ok` (start_redis_cluster's own
    /// limit: 30 s).
    static func start(in directory: URL) async throws -> RedisCluster {
        let output = directory.appendingPathComponent("cluster-seeds").path
        let log = directory.appendingPathComponent("cluster-start.log").path
        let child = try ChildProcess(
            argv: ["/bin/bash", "-c", "cd \"$1\" && source Scripts/lib.sh && start_redis_cluster \"$2\" >\"$3\"", "bash",
                GatewayProcess.packageRoot.path, directory.path, output],
            environment: ["PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"],
            stdoutPath: log, stderrPath: log)
        let finished = await offloadWait(child, timeout: 60)
        let seeds = ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let cluster = RedisCluster(directory: directory, seeds: seeds)
        guard finished, child.exitState == .exited(0), cluster.ports.count == 6 else {
            cluster.stop()
            throw TestError("start_redis_cluster failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        return cluster
    }

    /// Starts node `index` again (after a kill): it rejoins the cluster, as the replica of the node that took its
    /// slots over.
    func restart(node index: Int) async throws {
        let log = directory.appendingPathComponent("cluster-restart.log").path
        let child = try ChildProcess(
            argv: ["/bin/bash", "-c", "cd \"$1\" && source Scripts/lib.sh && start_redis_cluster_node \"$2\" \"$3\" \"$4\"",
                "bash", GatewayProcess.packageRoot.path, directory.path, String(index), String(ports[index])],
            environment: ["PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"],
            stdoutPath: log, stderrPath: log)
        guard await offloadWait(child, timeout: 20), child.exitState == .exited(0) else {
            throw TestError("start_redis_cluster_node failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
    }

    func stop() {
        let child = try? ChildProcess(
            argv: ["/bin/bash", "-c", "cd \"$1\" && source Scripts/lib.sh && stop_redis_cluster \"$2\"", "bash",
                GatewayProcess.packageRoot.path, directory.path],
            environment: ["PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"],
            stdoutPath: "/dev/null", stderrPath: "/dev/null")
        _ = child?.waitForExit(timeout: 20)
    }
}

private func offloadWait(_ child: ChildProcess, timeout: Double) async -> Bool {
    (try? await offload { child.waitForExit(timeout: timeout) }) ?? false
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
