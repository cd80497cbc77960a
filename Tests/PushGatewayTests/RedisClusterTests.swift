// A real local Redis Cluster of the test's own (three masters, three replicas; Support/RedisCluster.swift) against what the gateway's
// cluster client will rely on (SPEC §9): its key → slot mapping, its reading of CLUSTER SLOTS, and the redirection
// a master answers for a key it does not serve.
import Foundation
import PushCore
import Testing

@Suite("Redis Cluster", .serialized, .timeLimit(.minutes(2)))
struct RedisClusterTests {
    static func cluster() async throws -> (RedisCluster, URL) {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("pushgw-cluster-" + UUID().uuidString.prefix(8).lowercased())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return (try await RedisCluster.start(in: directory), directory)
    }

    @Test("Every key the gateway uses has the slot CLUSTER KEYSLOT gives; CLUSTER SLOTS read as a slot map names three masters serving all 16384 slots; the wrong master answers MOVED to the right one, which stores the key")
    func slotsAgreeWithARealCluster() async throws {
        let (cluster, directory) = try await Self.cluster()
        defer {
            cluster.stop()
            try? FileManager.default.removeItem(at: directory)
        }
        let port = cluster.ports[0]
        let keys = ["u1", "42", "ü-ñ", "a{b}c", "{}x", "x{}{y}", "{{u}}"].flatMap { uid in
            [RedisKeys.inbox(uid), RedisKeys.meta(uid), RedisKeys.sessions(uid)]
        } + ["pg:{bans}", "pg:{bans}:v", "pg:{rules}", "plain", "{}", "a{", "}b{c}"]
        for key in keys {
            let slot = try redisCall(port: port, ["CLUSTER", "KEYSLOT", key])
            #expect(slot == "\(RedisSlot.of(key: key))", "\(key)")
        }

        let map = try ClusterSlotMap(slotsReply: try redisValue(port: port, ["CLUSTER", "SLOTS"]), askedHost: "127.0.0.1")
        #expect(map.masters.count == 3 && map.unservedSlots == 0, "\(map.masters)")
        #expect(Set(map.masters).isSubset(of: Set(cluster.ports.map { ClusterNode(host: "127.0.0.1", port: $0) })))
        #expect(map.replicas.values.allSatisfy { $0.count == 1 }, "\(map.replicas)")

        let key = RedisKeys.meta("moved-user")
        let owner = try #require(map.master(ofKey: key))
        let other = try #require(map.masters.first { $0 != owner })
        let refused = try redisValue(port: other.port, ["HSET", key, "seq", "1"])
        guard case .error(let text) = refused else {
            Issue.record("a master not serving the key answered \(refused)")
            return
        }
        #expect(ClusterRedirect(error: text, askedHost: "127.0.0.1") == .moved(slot: RedisSlot.of(key: key), to: owner))
        #expect(try redisValue(port: owner.port, ["HSET", key, "seq", "1"]) == .integer(1))
    }
}
