// The cluster client against the local Redis Cluster Scripts/test starts (PUSHGW_TEST_REDIS_CLUSTER: three masters,
// three replicas): commands reach the master of their slot, and a slot moved under it (MOVED) or being moved (ASK)
// is followed.
import Foundation
import Logging
import PushCore
import Testing

@testable import PushPosix

private func testClusterSeeds() throws -> [ClusterNode] {
    let name = "PUSHGW_TEST_REDIS_CLUSTER"
    guard let text = ProcessInfo.processInfo.environment[name], case .success(let seeds) = ClusterSeeds.parse(text)
    else { throw SystemError(call: "\(name) is not set to host:port,… (Scripts/test sets it)", errno: 0) }
    return seeds
}

private func bytes(_ args: String...) -> [[UInt8]] { args.map { Array($0.utf8) } }

/// Runs `loop` until `done()` holds (checked every 10 ms), or `seconds` at most; whether it held.
private func run(_ loop: EventLoop, atMost seconds: Double, until done: @escaping () -> Bool) -> Bool {
    let check = LoopTimer(loop: loop) { if done() { loop.stop() } }
    check.start(after: 0.01, repeat: 0.01)
    let limit = LoopTimer(loop: loop) { loop.stop() }
    limit.start(after: seconds)
    loop.run()
    return done()
}

/// One command through the cluster client, the loop run until its answer.
private func call(_ loop: EventLoop, _ client: RedisClusterClient, _ args: [[UInt8]], key: String) -> Result<
    RedisValue, RedisError
>? {
    var result: Result<RedisValue, RedisError>?
    client.send(args, slot: RedisSlot.of(key: key)) { result = $0 }
    _ = run(loop, atMost: 10) { result != nil }
    return result
}

private func status(_ result: Result<RedisValue, RedisError>?) -> String {
    switch result {
    case .success(.status(let text)): text
    case .success(.string(let bytes)): String(decoding: bytes, as: UTF8.self)
    case .success(let other): "\(other)"
    case .failure(let error): "failure \(error)"
    case nil: "no answer"
    }
}

@Suite(.serialized) struct RedisClusterClientTests {
    @Test func commandsGoToTheirSlotsMasterAndMovedAndAskAreFollowed() throws {
        let loop = try EventLoop(capacity: 1024)
        let client = RedisClusterClient(loop: loop, seeds: try testClusterSeeds(), logger: Logger(label: "test"))
        client.start()
        defer { client.stop() }
        #expect(run(loop, atMost: 10) { client.isReady }, "not ready: \(client.map.masters)")
        #expect(client.map.masters.count == 3)

        // 300 keys of 300 users over the three masters, each written and read back through the client.
        var answers: [String: Result<RedisValue, RedisError>] = [:]
        let keys = (0..<300).map { "pg:{u:cc\($0)}:meta" }
        for key in keys {
            client.send(bytes("SET", key, "v-\(key)"), slot: RedisSlot.of(key: key)) { answers[key] = $0 }
        }
        _ = run(loop, atMost: 10) { answers.count == keys.count }
        #expect(keys.allSatisfy { status(answers[$0]) == "OK" }, "\(answers.values.prefix(3))")
        #expect(Set(keys.compactMap { client.map.master(ofKey: $0) }).count == 3)
        #expect(status(call(loop, client, bytes("GET", keys[7]), key: keys[7])) == "v-\(keys[7])")

        // Move an empty slot from its master A to another master B, as redis-cli's resharding does, ASK first.
        let used = Set(keys.map { RedisSlot.of(key: $0) })
        let moved = try #require((0..<1000).map { "pg:{u:moved\($0)}:meta" }.first { !used.contains(RedisSlot.of(key: $0)) })
        let slot = RedisSlot.of(key: moved)
        let a = try #require(client.map.master(of: slot))
        let b = try #require(client.map.masters.first { $0 != a })
        func direct(_ node: ClusterNode, _ args: [[UInt8]]) -> String {
            var result: Result<RedisValue, RedisError>?
            let connection = client.client(for: node)
            _ = run(loop, atMost: 5) { connection.isReady }
            connection.send(args) { result = $0 }
            _ = run(loop, atMost: 5) { result != nil }
            return status(result)
        }
        let idA = direct(a, bytes("CLUSTER", "MYID"))
        let idB = direct(b, bytes("CLUSTER", "MYID"))
        #expect(direct(b, bytes("CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", idA)) == "OK")
        #expect(direct(a, bytes("CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", idB)) == "OK")
        // Migrating: A answers ASK for a key it does not have; the client asks B, after ASKING.
        #expect(status(call(loop, client, bytes("SET", moved, "asked"), key: moved)) == "OK")
        #expect(client.map.master(of: slot) == a, "ASK must not change the map")
        #expect(client.askFollowed == 1 && client.movedFollowed == 0)
        #expect(direct(b, bytes("CLUSTER", "SETSLOT", "\(slot)", "NODE", idB)) == "OK")
        #expect(direct(a, bytes("CLUSTER", "SETSLOT", "\(slot)", "NODE", idB)) == "OK")
        // Moved: A answers MOVED; the client follows it and now sends the slot's commands to B.
        #expect(status(call(loop, client, bytes("GET", moved), key: moved)) == "asked")
        #expect(client.map.master(of: slot) == b && client.movedFollowed == 1)
    }
}

/// A cluster of the test's own (Scripts/lib.sh's start_redis_cluster, the one Scripts/test uses), so it may kill
/// a node; stopped by `stop`.
private struct OwnCluster {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let directory: URL
    let seeds: [ClusterNode]

    static func start() throws -> OwnCluster {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("pushgw-own-cluster-" + UUID().uuidString.prefix(8).lowercased())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try shell("source Scripts/lib.sh && start_redis_cluster \"$1\" >\"$1/seeds\"", directory.path)
        let output = try String(contentsOf: directory.appendingPathComponent("seeds"), encoding: .utf8)
        guard case .success(let seeds) = ClusterSeeds.parse(output.trimmingCharacters(in: .whitespacesAndNewlines)),
            seeds.count == 6
        else { throw SystemError(call: "start_redis_cluster printed \(output)", errno: 0) }
        return OwnCluster(directory: directory, seeds: seeds)
    }

    /// The pid of the node listening on `port` (node<i> is the i-th seed).
    func pid(of port: UInt16) -> pid_t? {
        guard let index = seeds.firstIndex(where: { $0.port == port }) else { return nil }
        let pidfile = directory.appendingPathComponent("node\(index)/redis.pid").path
        return (try? String(contentsOfFile: pidfile, encoding: .utf8)).flatMap {
            pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    func stop() {
        try? Self.shell("source Scripts/lib.sh && stop_redis_cluster \"$1\"", directory.path)
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `script` with bash in the package root, `argument` as $1 (the root is shifted off). Output goes to files the script names, not
    /// to a pipe: the redis-servers it starts would hold a pipe open after it exits.
    /// (posix_spawn and waitpid: Foundation's `Process.waitUntilExit` never returned here.)
    private static func shell(_ script: String, _ argument: String) throws {
        let argv = ["/bin/bash", "-c", "cd \"$1\" && shift && \(script)", "bash", packageRoot.path, argument]
        var arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/bash", &actions, nil, &arguments, environ)
        guard rc == 0 else { throw SystemError(call: "posix_spawn /bin/bash", errno: rc) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw SystemError(call: "bash -c \(script): wait status \(status)", errno: 0) }
    }
}

@Suite(.serialized) struct RedisClusterFailoverTests {
    /// kill -9 of the master of a key: commands for its slot fail (the caller answers 503) until its replica has
    /// taken over, and then succeed there without the client being told anything: a fresh slot map names it.
    @Test func aKilledMastersSlotsComeBackOnItsReplica() throws {
        let cluster = try OwnCluster.start()
        defer { cluster.stop() }
        let loop = try EventLoop(capacity: 1024)
        let client = RedisClusterClient(
            loop: loop, seeds: cluster.seeds, logger: Logger(label: "test"), commandTimeout: 0.5)
        client.start()
        defer { client.stop() }
        #expect(run(loop, atMost: 10) { client.isReady })
        let key = "pg:{u:failover}:meta"
        #expect(status(call(loop, client, bytes("SET", key, "before"), key: key)) == "OK")
        let master = try #require(client.map.master(ofKey: key))
        let pid = try #require(cluster.pid(of: master.port))
        kill(pid, SIGKILL)

        // A SET every 50 ms, one at a time, until one succeeds (at most 20 s).
        var failures = 0
        var succeeded = false
        var inFlight = false
        let pusher = LoopTimer(loop: loop) {
            guard !inFlight, !succeeded else { return }
            inFlight = true
            client.send(bytes("SET", key, "after"), slot: RedisSlot.of(key: key)) { result in
                inFlight = false
                if status(result) == "OK" { succeeded = true } else { failures += 1 }
            }
        }
        pusher.start(after: 0.05, repeat: 0.05)
        #expect(run(loop, atMost: 20) { succeeded }, "\(failures) failures, map \(client.map.masters)")
        pusher.stop()
        #expect(failures > 0, "no command failed while the master was gone")
        let promoted = try #require(client.map.master(ofKey: key))
        #expect(promoted != master)
        #expect(status(call(loop, client, bytes("GET", key), key: key)) == "after")
    }
}
