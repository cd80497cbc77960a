// The gateway as several nodes (SPEC §2 delivery guarantees, §3, §5 nodes and channels; issue 4): two separate
// `pushgw serve` instances sharing one Redis, clients on different nodes, pushes posted to any node, topics.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Cluster: two instances on one Redis", .serialized, .timeLimit(.minutes(2)))
struct ClusterInstanceTests {
    // MARK: - 2. Two instances on one Redis

    @Test("Two instances on one Redis (a server, or a Redis Cluster): pushes to instance 1 reach a device on instance 2; 200 stored pushes posted alternately to both arrive 1…200 in order on both devices", arguments: TestStorage.allCases)
    func twoInstancesOrdered(storage: TestStorage) async throws {
        let cluster = try await SharedRedisCluster.start(instances: 2, storage: storage)
        defer { cluster.stop() }
        let (g1, g2) = (cluster.gateways[0], cluster.gateways[1])

        // b first: a's AUTH on instance 1 then learns of b's session from Redis. The other way round, instance 1
        // learns of b from a message that crosses the cluster bus, which can come after the push below (README,
        // "Redis Cluster": a transient push right after another node's AUTH).
        let b = try await WireClient.connect(g2)
        try await b.auth(mid: "x", key: "b")
        let a = try await WireClient.connect(g1)
        try await a.auth(mid: "x", key: "a")
        let nodes = try await g1.waitForDevices("x", keys: ["a", "b"])
        #expect(nodes["a"] != nodes["b"], "devices a and b on different nodes: \(nodes)")

        let transient = try await g1.pushLogged(pushBody(users: ["x"], op: 1000, payload: #"{"hop":1}"#, store: false))
        #expect(transient.status == 200, "\(transient)")
        #expect(transient.online("x") == 2, "online counts the device on instance 2: \(transient)")
        try await a.expectMessage(op: 1000, body: Array(#"{"hop":1}"#.utf8), "a on instance 1")
        try await b.expectMessage(op: 1000, body: Array(#"{"hop":1}"#.utf8), "b on instance 2")

        let device = try await g1.pushLogged(pushBody(devices: [("x", "b")], op: 1001, payload: "[2]", store: false))
        #expect(device.status == 200, "\(device)")
        try await b.expectMessage(op: 1001, body: Array("[2]".utf8), "device push on instance 1 to x/b on instance 2")
        try await a.expectNothingPending("the device push named b only")

        // 200 stored pushes: push i to instance i % 2, 4 keep-alive connections per instance, all at once.
        let total = 200
        let readerA = Task { try await a.readFrames(total, timeout: 20) }
        let readerB = Task { try await b.readFrames(total, timeout: 20) }
        let bodies = (0..<total).map { storedPushBody(users: ["x"], op: 1000 + $0 % 2, payload: "{\"i\":\($0)}") }
        let even = stride(from: 0, to: total, by: 2).map { bodies[$0] }
        let odd = stride(from: 1, to: total, by: 2).map { bodies[$0] }
        async let first = pushConcurrently(port: g1.httpPort, bodies: even, connections: 4)
        async let second = pushConcurrently(port: g2.httpPort, bodies: odd, connections: 4)
        let (r1, r2) = try await (first, second)
        #expect(r1.errors.isEmpty && r2.errors.isEmpty, "\(r1.errors + r2.errors)")

        var payloadOfSeq: [Int: String] = [:]
        for i in bodies.indices {
            let response = i % 2 == 0 ? r1.responses[i / 2] : r2.responses[i / 2]
            #expect(response?.status == 200, "push \(i) to instance \(i % 2 + 1): \(String(describing: response))")
            guard let seq = response?.seq("x") else { continue }
            if let other = payloadOfSeq[seq] { Issue.record("seq \(seq) answered twice: \(other) and push \(i)") }
            payloadOfSeq[seq] = "{\"i\":\(i)}"
        }
        #expect(Set(payloadOfSeq.keys) == Set(1...total), "answered seqs: \(payloadOfSeq.keys.sorted().prefix(40))")

        for (name, reader) in [("a on instance 1", readerA), ("b on instance 2", readerB)] {
            let frames: [Frame]
            do { frames = try await reader.value } catch {
                Issue.record("\(name): \(error)")
                continue
            }
            expectSeqs(frames.map { Int($0.seq) }, 1...total, name)
            let wrong = frames.filter { payloadOfSeq[Int($0.seq)] != $0.text }
            #expect(wrong.isEmpty, "\(name): frames whose payload is not the one answered with their seq: \(wrong.prefix(5))")
        }
        try await a.expectNothingPending("a: nothing beyond 200")
        try await b.expectNothingPending("b: nothing beyond 200")

        if let redisCluster = cluster.redisCluster {
            // The inbox is on the master of its slot, and only there: every other node answers MOVED (a replica
            // too, without READONLY).
            let answers = try redisCluster.ports.map { try redisValue(port: $0, ["LLEN", "pg:{u:x}:inbox"]) }
            #expect(answers.filter { $0 == .integer(200) }.count == 1, "LLEN on each node: \(answers)")
            #expect(answers.filter { if case .error(let text) = $0 { text.hasPrefix("MOVED") } else { false } }.count == 5)
        }
    }

    @Test("Transient pushes to a user whose sessions are all on this node cost no Redis script; a device of the user on another instance, connected later or earlier, is reached")
    func transientOnlyHere() async throws {
        let cluster = try await SharedRedisCluster.start(instances: 2)
        defer { cluster.stop() }
        let (g1, g2) = (cluster.gateways[0], cluster.gateways[1])

        let a = try await WireClient.connect(g1)
        try await a.auth(mid: "solo", key: "a")
        let before = try evalshaCalls(cluster.redis)
        for index in 0..<20 {
            let response = try await g1.pushLogged(pushBody(users: ["solo"], op: 1000, payload: "[\(index)]", store: false))
            #expect(response.status == 200 && response.online("solo") == 1, "\(response)")
        }
        for index in 0..<20 { try await a.expectMessage(op: 1000, body: Array("[\(index)]".utf8), "local push \(index)") }
        let scripts = try evalshaCalls(cluster.redis) - before
        #expect(scripts < 5, "20 pushes to a user only on this node ran \(scripts) scripts in Redis")

        // A second device on instance 2: its AUTH tells instance 1, whose pushes reach it from then on.
        let b = try await WireClient.connect(g2)
        try await b.auth(mid: "solo", key: "b")
        _ = try await g1.waitForDevices("solo", keys: ["a", "b"])
        let both = try await g1.pushLogged(pushBody(users: ["solo"], op: 1001, payload: #""both""#, store: false))
        #expect(both.online("solo") == 2, "\(both)")
        try await a.expectMessage(op: 1001, body: Array(#""both""#.utf8), "a on instance 1")
        try await b.expectMessage(op: 1001, body: Array(#""both""#.utf8), "b on instance 2, connected after a")

        // The other order: a device on instance 2 first; instance 1 learns of it from its own AUTH's answer.
        let c = try await WireClient.connect(g2)
        try await c.auth(mid: "duo", key: "c")
        let d = try await WireClient.connect(g1)
        try await d.auth(mid: "duo", key: "d")
        let duo = try await g1.pushLogged(pushBody(users: ["duo"], op: 1002, payload: #""duo""#, store: false))
        #expect(duo.online("duo") == 2, "\(duo)")
        try await d.expectMessage(op: 1002, body: Array(#""duo""#.utf8), "d on instance 1")
        try await c.expectMessage(op: 1002, body: Array(#""duo""#.utf8), "c on instance 2, connected before d")

        // The node channels drop (a presence note could have been lost meanwhile): users connected then go
        // through Redis again, and a user who authenticates after that is known to be local only.
        let alone = try await WireClient.connect(g1)
        try await alone.auth(mid: "alone", key: "a1")
        func scriptsRun(pushingTo user: String) async throws -> Int {
            let before = try evalshaCalls(cluster.redis)
            for index in 0..<10 {
                let response = try await g1.pushLogged(pushBody(users: [user], op: 1000, payload: "[\(index)]", store: false))
                #expect(response.status == 200 && response.online(user) == 1, "\(response)")
            }
            return try evalshaCalls(cluster.redis) - before
        }
        #expect(try await scriptsRun(pushingTo: "alone") < 5, "alone is connected to instance 1 only")
        let killed = try redisCall(cluster.redis, ["CLIENT", "KILL", "TYPE", "pubsub"])
        #expect((Int(killed) ?? 0) >= 2, "pub/sub connections killed: \(killed)")
        let resubscribed = try await eventually(timeout: 10) {
            try redisCall(cluster.redis, ["CLIENT", "LIST", "TYPE", "pubsub"]).split(whereSeparator: \.isNewline).count >= 2
        }
        #expect(resubscribed, "both instances subscribed again")
        let routed = try await scriptsRun(pushingTo: "alone")
        #expect(routed >= 10, "a user connected before the drop goes through route.lua: \(routed) scripts for 10 pushes")
        let late = try await WireClient.connect(g1)
        try await late.auth(mid: "late", key: "l1")
        let fresh = try await scriptsRun(pushingTo: "late")
        #expect(fresh < 5, "a user who authenticated after the drop is local only again: \(fresh) scripts for 10 pushes")
    }

    // MARK: - 3. Topics across instances

    @Test("Topics across instances (one Redis server, or a Redis Cluster): SUB on both, a topic push on instance 1 reaches both, /v1/topics counts both, UNSUB stops delivery", arguments: TestStorage.allCases)
    func topicsAcrossInstances(storage: TestStorage) async throws {
        let cluster = try await SharedRedisCluster.start(instances: 2, storage: storage)
        defer { cluster.stop() }
        let (g1, g2) = (cluster.gateways[0], cluster.gateways[1])
        let a = try await WireClient.connect(g1)
        try await a.auth(mid: "ta", key: "k")
        let b = try await WireClient.connect(g2)
        try await b.auth(mid: "tb", key: "k")

        for (name, client, seq) in [("a", a, UInt32(31)), ("b", b, UInt32(32))] {
            try client.send(op: Op.sub, seq: seq, text: #"{"topics":["news"]}"#)
            let reply = try await client.readFrame()
            #expect(reply?.op == 25 && reply?.seq == seq, "\(name): SUB reply: \(String(describing: reply))")
            #expect(reply?.json?["topics"] as? [String] == ["news"], "\(name): SUB reply: \(String(describing: reply))")
        }

        // The topic push is posted to instance 1 only.
        let push = try await g1.pushLogged(pushBody(topic: "news", op: 1500, payload: #"{"headline":1}"#, store: false))
        #expect(push.status == 200, "\(push)")
        try await a.expectMessage(op: 1500, body: Array(#"{"headline":1}"#.utf8), "topic member on instance 1")
        try await b.expectMessage(op: 1500, body: Array(#"{"headline":1}"#.utf8), "topic member on instance 2")

        // Counted across nodes (refreshed every 2 s), asked of either instance.
        for gateway in [g1, g2] {
            var last: HTTPResponse?
            let counted = try await eventually(timeout: 5) {
                last = try await gateway.http(HTTP.request("GET", "/v1/topics/news"))
                return last?.status == 200 && number(last?.json?["online"]) == 2
            }
            #expect(counted, "GET /v1/topics/news on port \(gateway.httpPort) within 5 s: expected online 2, last \(String(describing: last))")
        }

        // b leaves: op 27 lists the topic; a later topic push reaches a only.
        try b.send(op: Op.unsub, seq: 33, text: #"{"topics":["news"]}"#)
        let unsubReply = try await b.readFrame()
        #expect(unsubReply?.op == 27 && unsubReply?.seq == 33, "UNSUB reply: \(String(describing: unsubReply))")
        #expect(unsubReply?.json?["topics"] as? [String] == ["news"], "UNSUB reply: \(String(describing: unsubReply))")
        try await pause(0.3)  // the Redis UNSUBSCRIBE of b's node, if it does one, has gone out
        let second = try await g1.pushLogged(pushBody(topic: "news", op: 1501, payload: #"{"headline":2}"#, store: false))
        #expect(second.status == 200, "\(second)")
        try await a.expectMessage(op: 1501, body: Array(#"{"headline":2}"#.utf8), "a still subscribed")
        // A direct push to b, posted after the topic push on the same instance: b's next frame must be it.
        let marker = try await g1.pushLogged(pushBody(users: ["tb"], op: 1999, payload: #""marker""#, store: false))
        #expect(marker.status == 200, "\(marker)")
        try await b.expectMessage(op: 1999, body: Array(#""marker""#.utf8), "b after UNSUB: only the marker, not topic op 1501")
        try await b.expectNothingPending("b after UNSUB")

        var last: HTTPResponse?
        let recounted = try await eventually(timeout: 5) {
            last = try await g1.http(HTTP.request("GET", "/v1/topics/news"))
            return number(last?.json?["online"]) == 1
        }
        #expect(recounted, "GET /v1/topics/news after UNSUB within 5 s: expected online 1, last \(String(describing: last))")
    }
}
