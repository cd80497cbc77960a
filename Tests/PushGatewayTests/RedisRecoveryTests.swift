// Issue 10, items 1-3: what a Redis reconnect may lose is caught up (a stored message published while a node
// channel was down), a 503 says whether the push may have been stored, and long-polls wake whichever node stored.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Redis recovery: catch-up, honest 503s, long-polls across nodes", .serialized, .timeLimit(.minutes(3)))
struct RedisRecoveryTests {
    @Test("Node channels dropped: a stored push published while the other instance was resubscribing reaches its device within 1.5 s, with no further push")
    func lostNodeChannelMessageIsCaughtUp() async throws {
        let cluster = try await SharedRedisCluster.start(instances: 2)
        defer { cluster.stop() }
        let (g1, g2) = (cluster.gateways[0], cluster.gateways[1])
        let a = try await WireClient.connect(g1)
        try await a.auth(mid: "lost", key: "a", lastSeq: 0)
        let b = try await WireClient.connect(g2)
        try await b.auth(mid: "lost", key: "b", lastSeq: 0)
        _ = try await g1.waitForDevices("lost", keys: ["a", "b"])

        for round in 1...3 {
            // The pushes follow the kill at once: g2 resubscribes 0-100 ms later, after the publish.
            _ = try redisCall(cluster.redis, ["CLIENT", "KILL", "TYPE", "pubsub"])
            let response = try await g1.push(storedPushBody(users: ["lost"], payload: "{\"round\":\(round)}"))
            #expect(response.status == 200, "round \(round): \(response)")
            let seq = try #require(response.seq("lost"), "round \(round): \(response)")
            let onA = try await a.readStored(through: seq, timeout: 1.5)
            #expect(onA.map(\.seq) == [UInt32(seq)], "round \(round) on instance 1")
            do {
                let onB = try await b.readStored(through: seq, timeout: 1.5)
                #expect(onB.map(\.seq) == [UInt32(seq)], "round \(round) on instance 2")
                #expect(onB.last?.text == "{\"round\":\(round)}")
            } catch {
                Issue.record("round \(round): seq \(seq) answered 200 did not reach the device on the other instance within 1.5 s: \(error)")
                return
            }
            let back = try await eventually(timeout: 10) {
                try redisCall(cluster.redis, ["CLIENT", "LIST", "TYPE", "pubsub"]).split(whereSeparator: \.isNewline).count >= 2
            }
            #expect(back, "both instances subscribed again")
        }
    }

    @Test("Redis kill -9 and restart with a device on each of two workers: every stored push answered 200 reaches both devices in order within 1.5 s, nothing skipped")
    func restartDeliversEverythingAcknowledged() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"], redis: .persistentServer)
        defer { gateway.stop() }
        _ = try await gateway.waitForWorkers(2)
        // Devices until the user has one on each worker (SO_REUSEPORT picks).
        var clients: [String: WireClient] = [:]
        var nodesSeen: Set<String> = []
        for index in 0..<16 where nodesSeen.count < 2 || clients.count < 2 {
            let key = "d\(index)"
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: "restart", key: key, lastSeq: 0)
            let nodes = try await gateway.waitForDevices("restart", keys: Array(clients.keys) + [key])
            if nodesSeen.insert(nodes[key]!).inserted || clients.count < 2 { clients[key] = client } else { client.close() }
        }
        try #require(nodesSeen.count == 2, "no device landed on the second worker in 16 connects")

        var acknowledged: [Int] = []
        for round in 1...2 {
            gateway.stopRedis(kill: true)
            try await pause(1.0 + Double(round))
            try await gateway.startRedis()
            // Push until the first 200, then a few more; then nothing.
            var extra = 0
            let deadline = Date().addingTimeInterval(15)
            while extra < 10 && Date() < deadline {
                let response = try await gateway.push(storedPushBody(users: ["restart"], payload: "{\"r\":\(round)}"))
                if response.status == 200, let seq = response.seq("restart") {
                    acknowledged.append(seq)
                    extra += 1
                } else {
                    #expect(response.status == 503, "round \(round): \(response)")
                    try await pause(0.05)
                }
            }
            #expect(extra == 10, "round \(round): pushes answered 200 within 15 s of the restart: \(extra)")
            let last = try #require(acknowledged.last)
            for (key, client) in clients.sorted(by: { $0.key < $1.key }) {
                do {
                    let frames = try await client.readStored(through: last, timeout: 1.5)
                    let seqs = frames.map { Int($0.seq) }
                    let thisRound = acknowledged.suffix(10)
                    #expect(Set(thisRound).isSubset(of: Set(seqs)), "round \(round) \(key): got \(seqs), acknowledged \(Array(thisRound))")
                    #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 < $1 }, "round \(round) \(key): in order: \(seqs)")
                } catch {
                    Issue.record("round \(round) \(key): acknowledged seqs up to \(last) not all delivered within 1.5 s: \(error)")
                }
            }
        }
    }

    @Test("A push whose outcome is unknown (Redis stalled with the script in flight) answers 503 stored unknown with an id; the retry with that id stores it exactly once")
    func unknownOutcomeRetriedOnce() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let redis = try #require(gateway.redis, "the gateway's own redis-server")
        let first = try await gateway.push(storedPushBody(users: ["unk"], payload: "1"))
        #expect(first.status == 200 && first.seq("unk") == 1, "\(first)")

        redis.process.signal(SIGSTOP)
        let body = storedPushBody(users: ["unk"], payload: "2")
        let stalled = try await gateway.push(body)
        redis.process.signal(SIGCONT)
        #expect(stalled.status == 503 && stalled.errorCode == "unavailable", "\(stalled)")
        #expect(stalled.json?["stored"] as? String == "unknown", "\(stalled)")
        let id = try #require(stalled.json?["id"] as? String, "a 503 names the push's id: \(stalled)")

        var retried: HTTPResponse?
        let stored = try await eventually(timeout: 10) {
            retried = try? await gateway.push(storedPushBody(users: ["unk"], payload: "2", id: id))
            return retried?.status == 200
        }
        #expect(stored, "the retry with id \(id) is answered 200 once Redis is back: \(String(describing: retried))")
        #expect(retried?.seq("unk") == 2, "the retry answers the seq the stalled push got (stored once): \(String(describing: retried))")
        let again = try await gateway.push(storedPushBody(users: ["unk"], payload: "2", id: id))
        #expect(again.seq("unk") == 2, "\(again)")
        let next = try await gateway.push(storedPushBody(users: ["unk"], payload: "3"))
        #expect(next.seq("unk") == 3, "the user's inbox has the stalled push once: \(next)")
    }

    @Test("Redis down: a stored push answers 503 stored none with an id")
    func notStoredSaysNone() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        gateway.stopRedis()
        let down = try await eventually(timeout: 5) {
            (try? await gateway.http(HTTP.request("GET", "/healthz")))?.status == 503
        }
        #expect(down)
        let response = try await gateway.push(storedPushBody(users: ["none"], payload: "1", id: "given-id"))
        #expect(response.status == 503, "\(response)")
        #expect(response.json?["stored"] as? String == "none", "\(response)")
        #expect(response.json?["id"] as? String == "given-id", "\(response)")
    }

    @Test("Long-poll with two workers: 20 of 20 polls woken within 1.5 s by a push answered by either worker")
    func longPollWakesAcrossWorkers() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"])
        defer { gateway.stop() }
        _ = try await gateway.waitForWorkers(2)
        var slow: [String] = []
        for index in 0..<20 {
            let user = "poll\(index)"
            let poller = try await HTTPConnection.connect(gateway)
            defer { poller.close() }
            try poller.sendRaw(HTTP.request("GET", "/v1/users/\(user)/messages?after=0&wait=5"))
            try await pause(0.3)
            let pushedAt = Date()
            let push = try await gateway.push(storedPushBody(users: [user], payload: "{\"i\":\(index)}"))
            #expect(push.status == 200, "\(push)")
            let answer = try await poller.readResponse(timeout: 6)
            let waited = Date().timeIntervalSince(pushedAt)
            let messages = answer?.json?["messages"] as? [[String: Any]] ?? []
            #expect(messages.count == 1, "poll \(index): \(String(describing: answer))")
            if waited > 1.5 { slow.append("poll \(index): \(String(format: "%.2f", waited)) s") }
        }
        #expect(slow.isEmpty, "polls woken later than 1.5 s after the push: \(slow)")
    }
}
