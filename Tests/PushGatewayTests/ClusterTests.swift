// The gateway as several nodes (SPEC §1 process model, §2 delivery guarantees, §3, §5 nodes and channels; issue 4):
// a master with two workers, and two separate `pushgw serve` instances sharing one Redis, seen from outside —
// clients on different nodes, pushes posted to any node, a worker killed with SIGKILL, SIGTERM drain, SIGHUP
// reload.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The JSON body of a DISCONNECT frame, if `frame` is one.
private func disconnectBody(_ frame: Frame?) -> [String: Any]? {
    guard let frame, frame.op == Op.disconnect else { return nil }
    return frame.json
}

@Suite("Cluster: workers and instances on one Redis", .serialized, .timeLimit(.minutes(2)))
struct ClusterTests {
    // MARK: - 1. Two workers

    @Test("Two workers: 20 connections spread over both nodes; user, stored and broadcast pushes reach every worker; a kick crosses workers")
    func twoWorkers() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"])
        defer { gateway.stop() }
        let workers = try await gateway.waitForWorkers(2)

        // 12 devices of "multi", 8 users of one device each: 20 connections, SO_REUSEPORT spreads them.
        let multiKeys = (0..<12).map { "d\($0)" }
        var multi: [String: WireClient] = [:]
        var solos: [WireClient] = []
        for key in multiKeys {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: "multi", key: key)
            multi[key] = client
        }
        for i in 0..<8 {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: .string("solo\(i)"), key: "k")
            solos.append(client)
        }
        let all = multiKeys.map { multi[$0]! } + solos

        var nodes: [[String: Any]] = []
        let listed = try await eventually(timeout: 5) {
            nodes = try await gateway.nodeList()
            let counts = nodes.map { Int(number($0["connections"]) ?? -1) }
            return nodes.count == 2 && counts.reduce(0, +) == 20 && counts.allSatisfy { $0 > 0 }
        }
        #expect(listed, "GET /v1/nodes within 5 s: expected 2 nodes, both with connections, summing to 20; got \(nodes)")
        let nodePIDs = Set(nodes.compactMap { ($0["id"] as? String).flatMap(pidOfNode) })
        #expect(nodePIDs == Set(workers), "node ids \(nodes.map { $0["id"] ?? "?" }) vs worker pids \(workers)")

        let deviceNodes = try await gateway.waitForDevices("multi", keys: multiKeys)
        let byNode = Dictionary(grouping: multiKeys) { deviceNodes[$0]! }
        try #require(
            byNode.count == 2,
            "all 12 devices of multi on one worker (SO_REUSEPORT, odds 1 in 2048), cannot test crossing: \(deviceNodes)")

        // A transient push (answered by one worker) reaches the devices on both; online counts all 12.
        let transient = try await gateway.pushLogged(pushBody(users: ["multi"], op: 1001, payload: #"{"t":1}"#, store: false))
        #expect(transient.status == 200, "\(transient)")
        #expect(transient.online("multi") == 12, "online must count the devices on both workers: \(transient)")
        for key in multiKeys {
            try await multi[key]!.expectMessage(op: 1001, body: Array(#"{"t":1}"#.utf8), "transient to multi/\(key)")
        }

        // 10 stored pushes, concurrently over 2 connections: every device gets seqs 1…10 in order.
        let bodies = (0..<10).map { storedPushBody(users: ["multi"], op: 1002, payload: "{\"i\":\($0)}") }
        let (responses, errors) = try await pushConcurrently(port: gateway.httpPort, bodies: bodies, connections: 2)
        #expect(errors.isEmpty, "\(errors)")
        var payloadOfSeq: [Int: String] = [:]
        for (i, response) in responses.enumerated() {
            #expect(response?.status == 200, "stored push \(i): \(String(describing: response))")
            #expect(response?.online("multi") == 12, "stored push \(i): \(String(describing: response))")
            if let seq = response?.seq("multi") { payloadOfSeq[seq] = "{\"i\":\(i)}" }
        }
        #expect(Set(payloadOfSeq.keys) == Set(1...10), "seqs answered: \(payloadOfSeq.keys.sorted())")
        for key in multiKeys {
            let frames = try await multi[key]!.readStored(through: 10)
            expectSeqs(frames.map { Int($0.seq) }, 1...10, "multi/\(key) on \(deviceNodes[key]!)")
            for frame in frames where payloadOfSeq[Int(frame.seq)] != frame.text {
                Issue.record("multi/\(key): seq \(frame.seq) carried \(frame.text), answered for \(payloadOfSeq[Int(frame.seq)] ?? "?")")
            }
        }

        // A broadcast reaches all 20 connections on both workers.
        let broadcast = try await gateway.pushLogged(pushBody(all: true, op: 1003, payload: #""all""#, store: false))
        #expect(broadcast.status == 200, "\(broadcast)")
        for (i, client) in all.enumerated() {
            try await client.expectMessage(op: 1003, body: Array(#""all""#.utf8), "broadcast, connection \(i)")
        }

        // Kick one device on each worker over ONE keep-alive connection (one worker answers both): one of the two
        // kicks is for a device on the other worker.
        let victims = byNode.values.map { $0[0] }
        let http = try await HTTPConnection.connect(gateway)
        defer { http.close() }
        for key in victims {
            let response = try await http.roundTrip(HTTP.request("DELETE", "/v1/users/multi/devices/\(key)"))
            #expect(response.status == 200, "kick multi/\(key): \(response)")
        }
        for key in victims {
            let frames = try await multi[key]!.readUntilClosed(timeout: 5)
            #expect(frames.count == 1, "kicked multi/\(key) on \(deviceNodes[key]!): expected DISCONNECT then close, got \(frames)")
            let body = disconnectBody(frames.first)
            #expect(body?["reason"] as? String == "kicked", "multi/\(key): \(frames)")
            #expect(body?["reconnect"] as? Bool == false, "multi/\(key): \(frames)")
        }
        for key in multiKeys where !victims.contains(key) {
            try await multi[key]!.expectNothingPending("multi/\(key) was not kicked")
        }
        for client in solos { try await client.expectNothingPending("solo users got nothing addressed to multi") }
        #expect(try await gateway.deviceKeys("multi").count == 10, "sessions after kicking 2 of 12")
    }

    // MARK: - 2. Two instances on one Redis

    @Test("Two instances on one Redis: pushes to instance 1 reach a device on instance 2; 200 stored pushes posted alternately to both arrive 1…200 in order on both devices")
    func twoInstancesOrdered() async throws {
        let cluster = try await SharedRedisCluster.start(instances: 2)
        defer { cluster.stop() }
        let (g1, g2) = (cluster.gateways[0], cluster.gateways[1])

        let a = try await WireClient.connect(g1)
        try await a.auth(mid: "x", key: "a")
        let b = try await WireClient.connect(g2)
        try await b.auth(mid: "x", key: "b")
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

    @Test("Topics across instances: SUB on both, a topic push on instance 1 reaches both, /v1/topics counts both, UNSUB stops delivery")
    func topicsAcrossInstances() async throws {
        let cluster = try await SharedRedisCluster.start(instances: 2)
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

    // MARK: - 4. kill -9 of a worker

    @Test("kill -9 of a worker: the master starts a new one; its clients reconnect with last_seq and get every stored push made meanwhile")
    func workerKilled() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"])
        defer { gateway.stop() }
        let workers = try await gateway.waitForWorkers(2)

        // Devices of "crash" until both workers hold some (at most 16).
        var clients: [String: WireClient] = [:]
        var nodes: [String: String] = [:]
        for i in 0..<16 {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: "crash", key: "d\(i)")
            clients["d\(i)"] = client
            if i >= 3 {
                nodes = try await gateway.waitForDevices("crash", keys: Array(clients.keys))
                if Set(nodes.values).count == 2 { break }
            }
        }
        let victimNode = try #require(nodes["d0"])
        let victimPID = try #require(pidOfNode(victimNode), "node id \(victimNode)")
        try #require(workers.contains(victimPID), "node \(victimNode) is not one of the workers \(workers)")
        let victims = clients.keys.filter { nodes[$0] == victimNode }.sorted()
        let survivors = clients.keys.filter { nodes[$0] != victimNode }.sorted()
        try #require(!survivors.isEmpty, "every device landed on one worker: \(nodes)")

        // Seqs 1…5 before the crash.
        for i in 1...5 {
            let response = try await gateway.pushLogged(storedPushBody(users: ["crash"], payload: "{\"n\":\(i)}"))
            #expect(response.status == 200 && response.seq("crash") == i, "\(response)")
        }
        for (key, client) in clients {
            expectSeqs(try await client.readStored(through: 5).map { Int($0.seq) }, 1...5, "crash/\(key) before the kill")
        }

        #expect(kill(victimPID, SIGKILL) == 0, "kill -9 \(victimPID): \(errnoText())")
        let killedAt = Date()
        for key in victims {
            let closed = await clients[key]!.expectClosed(timeout: 5)
            #expect(closed, "crash/\(key) on the killed worker \(victimPID): connection still open 5 s later")
        }

        // Wait until the killed worker has finished dying (a zombie or reaped: its files, the listeners included,
        // are released by then). Before that, a new connection can still be queued on its SO_REUSEPORT listener
        // and then reset without an answer — a kernel race (net.ipv4.tcp_migrate_req = 0), not what this checks.
        let dead = try await eventually(timeout: 5) { !gateway.workerPIDs.contains(victimPID) }
        #expect(dead, "worker \(victimPID) still alive 5 s after kill -9")

        // While its clients are away: 10 stored pushes, each answered 200 (stored in Redis).
        for i in 6...15 {
            let response = try await gateway.pushLogged(storedPushBody(users: ["crash"], payload: "{\"n\":\(i)}"))
            #expect(response.status == 200 && response.seq("crash") == i, "push during the outage: \(response)")
        }
        for key in survivors {
            let frames = try await clients[key]!.readStored(through: 15)
            expectSeqs(frames.map { Int($0.seq) }, 6...15, "crash/\(key) on the surviving worker")
        }

        // The master replaces the worker.
        var now: [pid_t] = []
        let replaced = try await eventually(timeout: 8) {
            now = gateway.workerPIDs
            return now.count == 2 && !now.contains(victimPID)
        }
        #expect(replaced, "no replacement within 8 s of kill -9 \(victimPID): workers \(now); log:\n\(gateway.log.suffix(2000))")
        #expect(gateway.isRunning, "the master survived a worker's death")
        Swift.print("kill -9: worker \(victimPID) replaced \(String(format: "%.2f", Date().timeIntervalSince(killedAt))) s after kill -9; workers now \(now)")

        // The clients of the dead worker come back with last_seq 5: seqs 6…15 follow AUTH_REPLY by themselves. (A
        // client honours DISCONNECT reconnect:true after_ms: the new worker may answer so while its Redis
        // connection comes up — `freshWorkerServesAtOnce` checks that separately.)
        for key in victims {
            let (client, reply, refusals) = try await WireClient.reconnecting(gateway, mid: "crash", key: key, lastSeq: 5)
            if !refusals.isEmpty { Swift.print("kill -9: crash/\(key) reconnect refused first: \(refusals)") }
            #expect(number(reply["last_seq"]) == 15, "AUTH_REPLY after reconnect: \(reply)")
            let frames = try await client.readStored(through: 15)
            expectSeqs(frames.map { Int($0.seq) }, 6...15, "crash/\(key) after reconnecting with last_seq 5")
            #expect(frames.map(\.text) == (6...15).map { "{\"n\":\($0)}" }, "payloads of the replay: \(frames.map(\.text))")
            clients[key] = client
        }

        // And live delivery to them resumes.
        let after = try await gateway.pushLogged(storedPushBody(users: ["crash"], payload: #"{"n":16}"#))
        #expect(after.status == 200 && after.seq("crash") == 16, "\(after)")
        for (key, client) in clients {
            let frames = try await client.readStored(through: 16)
            expectSeqs(frames.map { Int($0.seq) }, 16...16, "crash/\(key) after the restart")
        }
    }

    @Test("A restarted worker serves at once: while the master replaces a killed worker, every AUTH gets AUTH_REPLY and every stored push 200 (none refused while the new worker's Redis connects)")
    func freshWorkerServesAtOnce() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"])
        defer { gateway.stop() }
        try await gateway.waitForWorkers(2)
        let (tcpPort, httpPort) = (gateway.tcpPort, gateway.httpPort)
        var problems: [String] = []
        var counts: [String] = []
        for round in 1...3 {
            let before = gateway.workerPIDs
            let victim = before[round % before.count]
            #expect(kill(victim, SIGKILL) == 0)
            // Only once it is fully dead (its listeners released): see `workerKilled`.
            _ = try await eventually(timeout: 5) { !gateway.workerPIDs.contains(victim) }
            let stop = Locked(false)
            let hammer = Task {
                try await offload {
                    var problems: [String] = []
                    var attempts = 0
                    let start = Date()
                    while !stop.current {
                        attempts += 1
                        let at = String(format: "%.3f", Date().timeIntervalSince(start))
                        do {
                            let client = try WireClient(port: tcpPort)
                            defer { client.close() }
                            try client.send(op: Op.auth, seq: 1, text: authBody(mid: .string("f\(round)-\(attempts)"), key: "k", lastSeq: 0))
                            let result = try client.readSync(timeout: 3, allowTruncated: true)
                            if case .frame(let frame) = result, frame.op == Op.authReply {} else {
                                problems.append("round \(round) +\(at) s: AUTH answered \(result)")
                            }
                        } catch {
                            problems.append("round \(round) +\(at) s: AUTH: \(error)")
                        }
                        do {
                            let connection = try HTTPConnection(port: httpPort)
                            defer { connection.close() }
                            try connection.sendRaw(
                                HTTP.request("POST", "/v1/push", body: storedPushBody(users: ["fresh"], payload: "{\"a\":\(attempts)}")))
                            let response = try connection.readResponseSync(timeout: 3)
                            if response?.status != 200 {
                                problems.append("round \(round) +\(at) s: stored push answered \(String(describing: response))")
                            }
                        } catch {
                            problems.append("round \(round) +\(at) s: stored push: \(error)")
                        }
                        usleep(2_000)
                    }
                    return (attempts, problems)
                }
            }
            var now: [pid_t] = []
            let replaced = try await eventually(timeout: 8) {
                now = gateway.workerPIDs
                return now.count == 2 && !now.contains(victim)
            }
            #expect(replaced, "round \(round): no replacement for \(victim) within 8 s: \(now)")
            try await pause(1.5)
            stop.update { $0 = true }
            let (attempts, found) = try await hammer.value
            counts.append("round \(round): \(attempts) AUTHs and pushes")
            problems += found
        }
        #expect(
            problems.isEmpty,
            "while a killed worker was replaced (\(counts)), \(problems.count) AUTHs/pushes were refused: \(problems.prefix(12))")
    }

    // MARK: - 5. SIGTERM drain

    @Test("SIGTERM to the master: every client gets DISCONNECT shutdown, reconnect true, after_ms within drain_timeout, then a close; exit 0 in time")
    func drainOnSigterm() async throws {
        let drain = 2.0
        let gateway = try await GatewayProcess.start(
            ["PUSHGW_SERVER_WORKERS": "2", "PUSHGW_SERVER_DRAIN_TIMEOUT": "\(Int(drain))"])
        defer { gateway.stop() }
        try await gateway.waitForWorkers(2)
        var clients: [WireClient] = []
        for i in 0..<10 {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: .string("drain\(i)"), key: "k")
            clients.append(client)
        }
        for client in clients { _ = try await client.heartbeat(seq: 7) }

        let readers = clients.map { client in Task { try await client.readUntilClosed(timeout: drain + 4) } }
        let started = Date()
        let state = try await gateway.signalAndWait(SIGTERM, timeout: drain + 8)
        let took = Date().timeIntervalSince(started)
        #expect(state == .exited(0), "master after SIGTERM: \(state) after \(took) s; log:\n\(gateway.log.suffix(3000))")
        #expect(took <= drain + 4, "master took \(took) s to exit with drain_timeout \(drain)")
        Swift.print("drain: master exited \(state) \(String(format: "%.2f", took)) s after SIGTERM (drain_timeout \(drain) s)")

        for (i, reader) in readers.enumerated() {
            let frames: [Frame]
            do { frames = try await reader.value } catch {
                Issue.record("client \(i): \(error)")
                continue
            }
            #expect(frames.count == 1, "client \(i): expected one DISCONNECT then close, got \(frames)")
            let body = disconnectBody(frames.last)
            #expect(body?["reason"] as? String == "shutdown", "client \(i): \(frames)")
            #expect(body?["reconnect"] as? Bool == true, "client \(i): \(frames)")
            let after = number(body?["after_ms"])
            #expect(after.map { $0 >= 0 && $0 <= drain * 1000 } == true, "client \(i): after_ms \(String(describing: after)) not in 0…\(Int(drain * 1000))")
        }
        #expect(gateway.workerPIDs.isEmpty, "workers left: \(gateway.workerPIDs)")
    }

    // MARK: - 6. SIGHUP reload

    @Test("SIGHUP reload: new worker pids, the old ones drain their clients (reconnect true); stored pushes meanwhile all 200 and all delivered after reconnecting with last_seq; no connect refused")
    func reloadOnSighup() async throws {
        let gateway = try await GatewayProcess.start(
            ["PUSHGW_SERVER_WORKERS": "2", "PUSHGW_SERVER_DRAIN_TIMEOUT": "2"])
        defer { gateway.stop() }
        let old = try await gateway.waitForWorkers(2)

        let keys = (0..<6).map { "r\($0)" }
        var clients: [String: WireClient] = [:]
        for key in keys {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: "reload", key: key)
            clients[key] = client
        }
        _ = try await gateway.waitForDevices("reload", keys: keys)
        for i in 1...3 {
            let response = try await gateway.pushLogged(storedPushBody(users: ["reload"], payload: "{\"n\":\(i)}"))
            #expect(response.status == 200 && response.seq("reload") == i, "\(response)")
        }
        for key in keys { _ = try await clients[key]!.readStored(through: 3) }

        // Throughout the reload: a stored push every 20 ms on a fresh HTTP connection, and a fresh TCP connect +
        // AUTH every 20 ms.
        let stop = Locked(false)
        let httpPort = gateway.httpPort
        let tcpPort = gateway.tcpPort
        let pusher = Task {
            try await offload {
                var results: [(n: Int, status: Int?, seq: Int?, error: String?)] = []
                var n = 3
                while !stop.current {
                    n += 1
                    do {
                        let connection = try HTTPConnection(port: httpPort)
                        defer { connection.close() }
                        try connection.sendRaw(
                            HTTP.request("POST", "/v1/push", body: storedPushBody(users: ["reload"], payload: "{\"n\":\(n)}")))
                        let response = try connection.readResponseSync(timeout: 5)
                        results.append((n, response?.status, response?.seq("reload"), response == nil ? "closed without an answer" : nil))
                    } catch {
                        results.append((n, nil, nil, "\(error)"))
                    }
                    usleep(20_000)
                }
                return results
            }
        }
        let prober = Task {
            try await offload {
                var failures: [String] = []
                var attempts = 0
                while !stop.current {
                    attempts += 1
                    do {
                        let client = try WireClient(port: tcpPort)
                        defer { client.close() }
                        try client.send(op: Op.auth, seq: 1, text: authBody(mid: "probe", key: "p\(attempts)"))
                        switch try client.readSync(timeout: 3, allowTruncated: true) {
                        case .frame(let reply) where reply.op == Op.authReply: break
                        case .frame(let other): failures.append("connect \(attempts): \(other) instead of AUTH_REPLY")
                        case .closed:
                            failures.append("connect \(attempts): \(client.socket.sawReset ? "reset" : "closed") before AUTH_REPLY")
                        case .timedOut: failures.append("connect \(attempts): no AUTH_REPLY within 3 s")
                        }
                    } catch {
                        failures.append("connect \(attempts): \(error)")
                    }
                    usleep(20_000)
                }
                return (attempts, failures)
            }
        }

        // The old clients read until their worker drains them, then reconnect at once with their last seq.
        let sessions = keys.map { key in
            let oldClient = clients[key]!
            return Task { () async throws -> (old: [Frame], client: WireClient, lastSeq: Int) in
                let frames = try await oldClient.readUntilClosed(timeout: 12)
                let lastSeq = frames.filter { $0.op >= 1000 }.last.map { Int($0.seq) } ?? 3
                let (client, _, refusals) = try await WireClient.reconnecting(gateway, mid: "reload", key: key, lastSeq: lastSeq)
                if !refusals.isEmpty { Swift.print("reload: reload/\(key) reconnect refused first: \(refusals)") }
                return (frames, client, lastSeq)
            }
        }

        try await pause(0.3)
        let hup = Date()
        gateway.process.signal(SIGHUP)
        var workers: [pid_t] = []
        let fresh = try await eventually(timeout: 5) {
            workers = gateway.workerPIDs
            return workers.filter { !old.contains($0) }.count == 2
        }
        #expect(fresh, "2 new worker pids within 5 s of SIGHUP: old \(old), now \(workers)")
        let oldGone = try await eventually(timeout: 10) { gateway.workerPIDs.allSatisfy { !old.contains($0) } }
        #expect(oldGone, "old workers \(old) still running 10 s after SIGHUP: \(gateway.workerPIDs); log:\n\(gateway.log.suffix(2000))")
        let oldGoneAfter = Date().timeIntervalSince(hup)
        try await pause(1.0)
        stop.update { $0 = true }
        let pushes = try await pusher.value
        let (attempts, refused) = try await prober.value
        #expect(gateway.isRunning, "master still running after the reload")
        #expect(gateway.workerPIDs.count == 2, "workers after the reload: \(gateway.workerPIDs)")

        #expect(refused.isEmpty, "\(refused.count) of \(attempts) connects failed during the reload: \(refused.prefix(10))")
        let failed = pushes.filter { $0.status != 200 }
        #expect(failed.isEmpty, "\(failed.count) of \(pushes.count) stored pushes not answered 200 during the reload: \(failed.prefix(10))")
        let answered = pushes.compactMap(\.seq)
        #expect(answered == Array(4..<(4 + answered.count)), "seqs answered in order (one pusher): \(answered.prefix(50))")
        // The stored ones (answered 200) only: a push answered otherwise was not stored and has no seq.
        let lastSeq = answered.last ?? 3
        var payloadOfSeq: [Int: String] = [:]
        for push in pushes { if let seq = push.seq { payloadOfSeq[seq] = "{\"n\":\(push.n)}" } }

        for (i, session) in sessions.enumerated() {
            let key = keys[i]
            let (oldFrames, client, resumedAfter): ([Frame], WireClient, Int)
            do { (oldFrames, client, resumedAfter) = try await session.value } catch {
                Issue.record("reload/\(key): \(error)")
                continue
            }
            defer { client.close() }
            let disconnect = oldFrames.last
            let body = disconnectBody(disconnect)
            #expect(body?["reconnect"] as? Bool == true, "reload/\(key): the old connection must end with DISCONNECT reconnect:true; got \(oldFrames.suffix(3))")
            #expect(oldFrames.dropLast().allSatisfy { $0.op >= 1000 }, "reload/\(key): \(oldFrames)")
            let oldSeqs = oldFrames.filter { $0.op >= 1000 }.map { Int($0.seq) }
            if !oldSeqs.isEmpty { expectSeqs(oldSeqs, 4...resumedAfter, "reload/\(key) before its DISCONNECT") }
            guard resumedAfter < lastSeq else { continue }
            let frames: [Frame]
            do { frames = try await client.readStored(through: lastSeq, timeout: 5) } catch {
                Issue.record("reload/\(key) reconnected with last_seq \(resumedAfter): \(error)")
                continue
            }
            expectSeqs(frames.map { Int($0.seq) }, (resumedAfter + 1)...lastSeq, "reload/\(key) after reconnecting with last_seq \(resumedAfter)")
            let wrong = frames.filter { $0.text != payloadOfSeq[Int($0.seq)] }
            #expect(wrong.isEmpty, "reload/\(key): payload not matching its seq: \(wrong.prefix(3))")
        }
        Swift.print("reload: \(pushes.count) pushes, \(attempts) connects during it; old workers gone \(String(format: "%.1f", oldGoneAfter)) s after SIGHUP")
    }
}

/// EVALSHA calls the Redis server has run so far (`INFO commandstats`).
func evalshaCalls(_ redis: RedisServer) throws -> Int {
    let text = try redisCall(redis, ["INFO", "commandstats"])
    guard let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_evalsha:calls=") })
    else { return 0 }
    return Int(line.dropFirst("cmdstat_evalsha:calls=".count).prefix { $0.isNumber }) ?? 0
}

/// One command over a raw RESP connection; the reply's text: an integer's or a simple string's line, or a bulk
/// string's contents.
func redisCall(_ redis: RedisServer, _ args: [String]) throws -> String {
    let socket = try TestSocket(port: redis.port)
    defer { socket.close() }
    var request = "*\(args.count)\r\n"
    for arg in args { request += "$\(arg.utf8.count)\r\n\(arg)\r\n" }
    try socket.sendAll(Array(request.utf8))
    let deadline = Date().addingTimeInterval(5)
    while true {
        let text = String(decoding: socket.inbound, as: UTF8.self)
        if let end = text.range(of: "\r\n") {
            let first = text[..<end.lowerBound]
            guard first.hasPrefix("$"), let length = Int(first.dropFirst()) else { return String(first.dropFirst()) }
            let body = Array(socket.inbound.dropFirst(first.utf8.count + 2))
            if body.count >= length { return String(decoding: body.prefix(length), as: UTF8.self) }
        }
        guard try socket.fill(until: deadline) == .data else { throw TestError("no reply from Redis to \(args)") }
    }
}
