// The gateway as several nodes (SPEC §1 process model, §2 delivery guarantees; issue 4): a worker killed with
// SIGKILL is replaced by the master, and its clients catch up.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Cluster: a killed worker is replaced", .serialized, .timeLimit(.minutes(2)))
struct WorkerRestartTests {
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
}
