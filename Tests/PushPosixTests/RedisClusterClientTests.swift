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
