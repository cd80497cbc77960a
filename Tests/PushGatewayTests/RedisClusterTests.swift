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

@Suite("Redis Cluster failover", .serialized, .timeLimit(.minutes(3)))
struct RedisClusterFailoverGatewayTests {
    @Test("kill -9 of a user's master during a stream of stored pushes with redis.wait_replicas = 1: the user's pushes answer 503 while the master is gone, and while the promoted replica has no replica of its own; once the killed node is back (as its replica) 200 again; every push answered 200 is in the inbox afterwards, in seq order")
    func masterKilledMidStream() async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("pushgw-failover-" + UUID().uuidString.prefix(8).lowercased())
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cluster = try await RedisCluster.start(in: directory)
        defer {
            cluster.stop()
            try? FileManager.default.removeItem(at: directory)
        }
        let gateway = try await GatewayProcess.start(
            ["PUSHGW_REDIS_WAIT_REPLICAS": "1", "PUSHGW_REDIS_WAIT_TIMEOUT_MS": "200"],
            redis: .redisCluster(seeds: cluster.seeds))
        defer { gateway.stop() }

        let user = "failover"
        let key = RedisKeys.inbox(user)
        // The master holding the user's keys is the one node that does not answer MOVED for them.
        let owner = try #require(
            cluster.ports.firstIndex { port in
                if case .integer = try redisValue(port: port, ["LLEN", key]) { true } else { false }
            }, "no node serves \(key)")
        let pidText = try String(
            contentsOf: directory.appendingPathComponent("node\(owner)/redis.pid"), encoding: .utf8)
        let pid = try #require(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))

        var answered: [(payload: Int, seq: Int)] = []
        var statuses: [Int] = []
        var killedAt: Int?
        var failedAfterKill = 0
        var okAfterFailure = 0
        var restarted = false
        let deadline = Date().addingTimeInterval(60)
        var i = 0
        while Date() < deadline && okAfterFailure < 20 {
            i += 1
            if i == 20 {
                kill(pid, SIGKILL)
                killedAt = i
            }
            // Once a replica serves the slot (it has no replica: WAIT 1 answers 0, so 503 still), the killed node
            // comes back and becomes its replica.
            if !restarted, killedAt != nil, failedAfterKill >= 5,
                cluster.ports.indices.contains(where: { index in
                    index != owner && (try? redisValue(port: cluster.ports[index], ["LLEN", key])).map {
                        if case .integer = $0 { true } else { false }
                    } == true
                })
            {
                try await cluster.restart(node: owner)
                restarted = true
            }
            let response = try await gateway.push(storedPushBody(users: [user], payload: "{\"i\":\(i)}"))
            statuses.append(response.status)
            if response.status == 200, let seq = response.seq(user) {
                answered.append((i, seq))
                if failedAfterKill > 0 { okAfterFailure += 1 }
            } else {
                #expect(response.status == 503, "push \(i): \(response)")
                if killedAt != nil { failedAfterKill += 1 }
            }
            if failedAfterKill == 0 && killedAt != nil { try await pause(0.02) }
        }
        #expect(failedAfterKill > 0, "no push failed after the kill: \(statuses)")
        #expect(restarted, "no replica took the slot over")
        #expect(okAfterFailure == 20, "pushes did not come back to 200 within 60 s: \(statuses.suffix(40))")

        // Every push answered 200 is there, on the promoted replica, with the seq it was answered with.
        let response = try await gateway.http(HTTP.request("GET", "/v1/users/\(user)/messages?after=0&limit=200"))
        #expect(response.status == 200, "\(response)")
        let messages = (response.json?["messages"] as? [[String: Any]]) ?? []
        var payloadOfSeq: [Int: Int] = [:]
        for message in messages {
            guard let seq = number(message["seq"]).map({ Int($0) }),
                let payload = message["payload"] as? [String: Any], let i = number(payload["i"]).map({ Int($0) })
            else { continue }
            payloadOfSeq[seq] = i
        }
        let missing = answered.filter { payloadOfSeq[$0.seq] != $0.payload }
        #expect(missing.isEmpty, "answered 200 but not in the inbox (payload, seq): \(missing); inbox \(payloadOfSeq)")
        let seqs = messages.compactMap { number($0["seq"]).map { Int($0) } }
        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count, "\(seqs)")
        let newOwner = cluster.ports.firstIndex { port in
            if case .integer = (try? redisValue(port: port, ["LLEN", key])) ?? .null { true } else { false }
        }
        #expect(newOwner != nil && newOwner != owner, "the user's slot moved to the replica: \(String(describing: newOwner))")
        #expect(answered.count < 200, "the check reads at most 200 messages")
    }
}
