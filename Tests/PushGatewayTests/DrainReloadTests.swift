// The gateway as several nodes (SPEC §1 process model, §2 delivery guarantees; issue 4): SIGTERM drains the
// clients and exits, SIGHUP replaces the workers without refusing a connect or a push.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Cluster: SIGTERM drain and SIGHUP reload", .serialized, .timeLimit(.minutes(2)))
struct DrainReloadTests {
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
