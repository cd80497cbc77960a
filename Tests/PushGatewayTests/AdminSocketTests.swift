// The admin socket against the real binary (SPEC §6): every command, the socket's mode and cleanup, across two
// workers.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Admin socket", .timeLimit(.minutes(1)))
struct AdminSocketTests {
    /// `stats` counts the clients of every worker: the total and the per-worker lines agree with what is connected.
    @Test func statsCountsConnectionsAcrossWorkers() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: (0..<6).map { "st-\($0)" })
        defer { clients.forEach { $0.close() } }

        var last: (values: [String: String], workers: [[String: String]]) = ([:], [])
        let counted = try await eventually(timeout: 5) {
            last = try await gateway.stats()
            return last.values["connections"] == "6" && last.workers.count == 2
                && last.workers.allSatisfy { $0["state"] == "running" }
        }
        #expect(counted, "stats: \(last)")
        let perWorker = last.workers.compactMap { $0["connections"].flatMap(Int.init) }
        #expect(perWorker.reduce(0, +) == 6, "per-worker connections \(perWorker)")
        #expect(Set(last.workers.compactMap { $0["index"] }) == ["0", "1"])
        #expect(last.values["users"] == "6")
        #expect(last.values["workers"] == "2")
        // Every SPEC §6 figure is there.
        for name in [
            "accepts_per_s", "closes_per_s", "closes_per_s.peer_closed", "frames_in_per_s", "frames_out_per_s",
            "pushes_per_s", "deliveries_per_s", "stored_per_s", "redis_latency_p50_ms", "redis_latency_p99_ms",
            "push_delivery_p50_ms", "push_delivery_p99_ms", "write_queue_bytes", "rss_bytes",
        ] {
            #expect(last.values[name] != nil, "\(name) missing from stats: \(last.values)")
        }
        #expect(
            last.workers.allSatisfy { Int($0["rss_bytes"] ?? "") ?? 0 > 1_000_000 }, "RSS per worker: \(last.workers)")
        // The harness's readiness probe connects to the client port too.
        #expect(Int(last.values["accepted_total"] ?? "") ?? 0 >= 6, "\(last.values)")
    }

    /// `tail` writes a line every second until the client hangs up; the master goes on serving others.
    @Test func tailStreamsLines() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let client = try await gateway.adminClient(timeout: 3)
        try client.send("tail\n")
        let lines = try await offload { () -> [String] in
            var lines: [String] = []
            let deadline = Date().addingTimeInterval(2.5)
            while Date() < deadline, let line = try client.readLine() { lines.append(line) }
            return lines
        }
        #expect(lines.count >= 2, "tail lines in 2.5 s: \(lines)")
        #expect(lines.allSatisfy { $0.contains(" conns ") && $0.contains("push/s") && !$0.hasPrefix(".") }, "\(lines)")
        client.close()
        let stats = try await gateway.stats()
        #expect(stats.values["workers"] == "2")
    }

    /// `conns` lists authenticated connections (all, or one user's); `kick` sends DISCONNECT and closes them.
    @Test func connsAndKick() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["alice", "alice", "bob"])
        defer { clients.forEach { $0.close() } }

        let all = try await gateway.admin("conns")
        #expect(all.last == "total 3", "\(all)")
        #expect(all.filter { $0.contains("uid=alice") }.count == 2, "\(all)")
        #expect(all.contains { $0.hasPrefix("worker=") && $0.contains("uid=bob key=key-2") }, "\(all)")
        #expect(all.dropLast().allSatisfy { $0.hasSuffix(" transport=tcp") }, "\(all)")
        let alice = try await gateway.admin("conns alice")
        #expect(alice.last == "total 2" && alice.count == 3 && !alice.contains { $0.contains("uid=bob") }, "\(alice)")
        #expect(try await gateway.admin("conns nobody") == ["total 0"])

        #expect(try await gateway.admin("kick alice key-0") == ["OK kicked 1"])
        let kicked = try await clients[0].readUntilClosed()
        #expect(kicked.count == 1 && kicked.first?.op == Op.disconnect, "\(kicked)")
        #expect(kicked.first?.json?["reason"] as? String == "kicked", "\(kicked)")
        try await clients[1].expectNothingPending("the other device of alice stays")

        #expect(try await gateway.admin("kick bob") == ["OK kicked 1"])
        let bob = try await clients[2].readUntilClosed()
        #expect(bob.first?.op == Op.disconnect, "\(bob)")
        #expect(try await gateway.admin("kick nobody") == ["OK kicked 0"])
        #expect(try await eventually { try await gateway.admin("conns").last == "total 1" })
    }

    /// Client-chosen fields cannot forge admin lines: control characters are bad_auth, and what is left (spaces,
    /// `=`) is escaped so each connection is one line of the expected fields (issue 10 item 7).
    @Test func connsEscapesClientFields() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let forged = try await WireClient.connect(gateway)
        try forged.send(
            op: Op.auth, seq: 1, text: #"{"mid":"mallory","key":"k0","platform":"ios\n.\nworker=9 uid=root key=x"}"#)
        let refused = try await forged.readUntilClosed()
        #expect(refused.first?.op == Op.error && refused.first?.json?["code"] as? String == "bad_auth", "\(refused)")

        let spaced = try await WireClient.connect(gateway)
        defer { spaced.close() }
        try spaced.send(
            op: Op.auth, seq: 1, text: #"{"mid":"mallory","key":"k=1","platform":"ios worker=9","room_id":"r uid=root"}"#)
        _ = try await spaced.authReply(seq: 1)
        let lines = try await gateway.admin("conns mallory")
        #expect(lines.count == 2 && lines.last == "total 1", "\(lines)")
        let fields = lines.first?.split(separator: " ").map(String.init) ?? []
        #expect(fields.contains("key=k\\x3d1") && fields.contains("platform=ios\\x20worker\\x3d9"), "\(lines)")
        #expect(fields.contains("room=r\\x20uid\\x3droot"), "\(lines)")
        #expect(fields.filter { $0.hasPrefix("uid=") } == ["uid=mallory"], "\(lines)")
    }

    /// `nodes` reads the registry in Redis: both workers are nodes there, marked local.
    @Test func nodes() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        var lines: [String] = []
        let listed = try await eventually(timeout: 5) {
            lines = try await gateway.admin("nodes")
            return lines.filter { $0.hasPrefix("node ") && $0.contains(" local worker=") }.count == 2
        }
        #expect(listed, "\(lines)")
        #expect(lines.allSatisfy { $0.contains("addr=127.0.0.1:\(gateway.tcpPort)") }, "\(lines)")
    }

    /// `reload` starts a new generation of workers and the old ones go.
    @Test func reloadReplacesWorkers() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        var before: [[String: String]] = []
        #expect(
            try await eventually {
                before = try await gateway.stats().workers
                return before.count == 2
            })
        let oldPIDs = Set(before.compactMap { $0["pid"] })
        for _ in 0..<3 { #expect(try await gateway.push(pushBody(users: ["nobody"])).status == 200) }
        #expect(try await eventually { try await gateway.stats().values["pushes_total"] == "3" })

        let reply = try await gateway.admin("reload")
        #expect(reply.count == 1 && reply[0].hasPrefix("OK reloading"), "\(reply)")
        var after: (values: [String: String], workers: [[String: String]]) = ([:], [])
        let replaced = try await eventually(timeout: 10) {
            after = try await gateway.stats()
            let pids = Set(after.workers.compactMap { $0["pid"] })
            return after.workers.count == 2 && pids.isDisjoint(with: oldPIDs)
                && after.workers.allSatisfy { $0["gen"] == "2" && $0["state"] == "running" }
        }
        #expect(replaced, "before \(before), after \(after)")
        #expect(after.values["generation"] == "2")
        #expect(after.values["pushes_total"] == "3", "the old workers' counts stay in the totals: \(after.values)")
        // Clients are served by the new workers.
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "after-reload", key: "k")
    }

    /// `drain` closes the client listeners and sends the clients away with reconnect, the HTTP API stays; a
    /// reload takes clients again.
    @Test func drainThenReload() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["dr-1", "dr-2"])
        defer { clients.forEach { $0.close() } }

        let reply = try await gateway.admin("drain")
        #expect(reply.count == 1 && reply[0].hasPrefix("OK draining 2 of 2 workers"), "\(reply)")
        for client in clients {
            let frames = try await client.readUntilClosed(timeout: 5)
            #expect(frames.first?.op == Op.disconnect && frames.first?.json?["reconnect"] as? Bool == true, "\(frames)")
        }
        #expect(try await eventually { !portAccepts(gateway.tcpPort) }, "the client port closes")
        #expect(try await gateway.http(HTTP.request("GET", "/healthz")).status == 200, "the HTTP API stays")
        #expect(try await gateway.stats().values["draining"] == "yes")

        #expect(try await gateway.admin("reload").first?.hasPrefix("OK") == true)
        #expect(try await eventually(timeout: 5) { portAccepts(gateway.tcpPort) }, "a reload takes clients again")
        #expect(try await gateway.stats().values["draining"] == "no")
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "dr-3", key: "k")
    }

    /// `log-level` changes the level of the master and every worker at once: a debug line appears after it.
    @Test func logLevelAtRuntime() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let quiet = try await WireClient.connect(gateway)
        try await quiet.auth(mid: "ll-1", key: "k")
        quiet.close()
        try await pause(0.5)
        #expect(!gateway.log.contains("connection closed"), "no debug lines at info")

        let reply = try await gateway.admin("log-level debug")
        #expect(reply == ["OK log level debug in the master and 2 of 2 workers"], "\(reply)")
        for index in 0..<4 {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: .string("ll-\(index + 2)"), key: "k")
            client.close()
        }
        #expect(try await eventually { gateway.log.contains("connection closed") }, "debug lines after log-level debug")

        let refused = try await gateway.admin("log-level loud")
        #expect(refused.count == 1 && refused[0].hasPrefix("ERR usage: log-level"), "\(refused)")
    }

    /// `help` lists the commands; an unknown command or a wrong argument count is one `ERR` line; commands sent
    /// together are answered in order.
    @Test func helpErrorsAndPipelining() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let help = try await gateway.admin("help")
        for command in ["stats", "tail", "conns", "kick", "nodes", "reload", "drain", "log-level", "help"] {
            #expect(help.contains { $0.hasPrefix(command + " ") }, "\(command) in \(help)")
        }
        let unknown = try await gateway.admin("bogus")
        #expect(unknown.count == 1 && unknown[0].hasPrefix("ERR unknown command"), "\(unknown)")
        let usage = try await gateway.admin("kick")
        #expect(usage.count == 1 && usage[0].hasPrefix("ERR usage: kick"), "\(usage)")

        let client = try await gateway.adminClient()
        defer { client.close() }
        let replies = try await offload { () -> [[String]] in
            try client.send("bogus\nconns\nhelp\n")
            return [try client.readReply(), try client.readReply(), try client.readReply()]
        }
        #expect(replies[0].first?.hasPrefix("ERR ") == true && replies[1] == ["total 0"] && replies[2] == help)
    }

    /// A line longer than 4 KiB closes that admin connection; the master keeps serving.
    @Test func overlongLineDropsTheClient() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await gateway.adminClient()
        let closed = try await offload { () -> Bool in
            try client.send(String(repeating: "x", count: 10_000))
            return client.readUntilClosed()
        }
        #expect(closed)
        #expect(try await gateway.stats().values["workers"] == "1")
    }

    /// The socket is the user's alone (0600) and is removed when the gateway stops.
    @Test func socketModeAndCleanup() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        var info = stat()
        #expect(lstat(gateway.adminSocketPath, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600, "mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(try await gateway.signalAndWait(SIGTERM, timeout: 8) == .exited(0))
        #expect(access(gateway.adminSocketPath, F_OK) != 0, "socket file left behind")
    }

    /// A socket file left by a killed gateway does not stop the next start.
    @Test func staleSocketIsReplaced() async throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "pushgw-stale-" + UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("run/admin.sock").path
        // A bound socket nobody listens on, as a SIGKILLed gateway leaves.
        try FileManager.default.createDirectory(
            atPath: dir.appendingPathComponent("run").path, withIntermediateDirectories: true)
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
            raw[path.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        Glibc.close(stale)
        #expect(bound == 0)

        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_ADMIN_SOCKET": path])
        defer { gateway.stop() }
        let reply = try await offload { () -> [String] in
            let client = try AdminClient(path: path)
            defer { client.close() }
            try client.send("help\n")
            return try client.readReply()
        }
        #expect(reply.first?.hasPrefix("stats") == true)
    }
}
