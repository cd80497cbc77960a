// The admin socket, `pushgw ctl` and `/metrics` against the real binary (SPEC §6, §3): every command, the
// socket's mode, the client's output and exit status, and metric counts after traffic across two workers.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A gateway with two workers, so that figures and commands have to cross the control pipes, once both
/// workers have reported with Redis up (the harness waits for one worker's /healthz only).
private func startTwoWorkers(_ overrides: [String: String] = [:]) async throws -> GatewayProcess {
    let gateway = try await GatewayProcess.start(overrides.merging(["PUSHGW_SERVER_WORKERS": "2"]) { $1 })
    var workers: [[String: String]] = []
    let ready = try await eventually(timeout: 5) {
        workers = try await gateway.stats().workers
        return workers.count == 2 && workers.allSatisfy { $0["redis"] == "up" }
    }
    guard ready else {
        gateway.stop()
        throw TestError("two workers with Redis up not reported within 5 s: \(workers)")
    }
    return gateway
}

/// Authenticated clients, the gateway's view of which is checked.
private func connectClients(_ gateway: GatewayProcess, users: [String]) async throws -> [WireClient] {
    var clients: [WireClient] = []
    for (index, user) in users.enumerated() {
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: .string(user), key: "key-\(index)")
        clients.append(client)
    }
    return clients
}

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

@Suite("pushgw ctl", .timeLimit(.minutes(1)))
struct CtlTests {
    /// `ctl stats` prints tables with the connection count; the socket comes from --socket or the configuration.
    @Test func statsTable() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["ctl-1", "ctl-2", "ctl-3"])
        defer { clients.forEach { $0.close() } }
        #expect(try await eventually { try await gateway.stats().values["connections"] == "3" })

        let result = try await runCtl(["stats", "--socket", gateway.adminSocketPath])
        #expect(result.state == .exited(0), "\(result)")
        #expect(result.stdout.contains("connections  3"), "\(result.stdout)")
        #expect(result.stdout.contains("per second") && result.stdout.contains("push to delivery"), "\(result.stdout)")
        let workerRows = result.stdout.split(separator: "\n").filter { $0.hasPrefix("0 ") || $0.hasPrefix("1 ") }
        #expect(workerRows.count == 2, "\(result.stdout)")

        let fromConfig = try await runCtl(
            ["stats", "--raw"], environment: ["PUSHGW_SERVER_ADMIN_SOCKET": gateway.adminSocketPath])
        #expect(fromConfig.state == .exited(0), "\(fromConfig)")
        #expect(fromConfig.stdout.split(separator: "\n").contains("connections 3"), "\(fromConfig.stdout)")
    }

    /// Other commands print the gateway's lines; a refused command exits 1 with the reason on stderr.
    @Test func commandsAndRefusals() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["ctl-k"])
        defer { clients.forEach { $0.close() } }
        let kick = try await runCtl(["kick", "ctl-k", "key-0", "--socket", gateway.adminSocketPath])
        #expect(kick.state == .exited(0) && kick.stdout == "OK kicked 1\n", "\(kick)")
        let frames = try await clients[0].readUntilClosed()
        #expect(frames.first?.op == Op.disconnect)

        let bogus = try await runCtl(["bogus", "--socket", gateway.adminSocketPath])
        #expect(bogus.state == .exited(1), "\(bogus)")
        #expect(bogus.stderr.contains("unknown command"), "\(bogus)")
    }

    /// Not a terminal: `ctl tail` prints plain lines, one a second, until interrupted.
    @Test func tailPrintsLines() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let result = try await runCtl(["tail", "--socket", gateway.adminSocketPath], timeout: 2.5)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count >= 2, "\(result)")
        #expect(!result.stdout.contains("\r") && lines.allSatisfy { $0.contains(" conns ") }, "\(result)")
    }

    /// No gateway behind the socket: a clear message and a non-zero exit.
    @Test func unreachableGateway() async throws {
        let path = NSTemporaryDirectory() + "pushgw-none-\(UUID().uuidString.prefix(8)).sock"
        let result = try await runCtl(["stats", "--socket", path])
        #expect(result.state == .exited(3), "\(result)")
        #expect(result.stderr.contains("cannot reach the gateway") && result.stderr.contains(path), "\(result)")
        #expect(result.stdout.isEmpty)
    }
}

@Suite("Prometheus /metrics", .timeLimit(.minutes(1)))
struct MetricsEndpointTests {
    /// `/metrics` is Prometheus text with the pushgw_ series, aggregated over both workers: pushes, stored
    /// messages and deliveries count what was sent, whichever worker took each request.
    @Test func countsAcrossWorkers() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["m-1", "m-2"])
        defer { clients.forEach { $0.close() } }

        var text = ""
        #expect(
            try await eventually {
                text = try await gateway.metrics().text
                return metricValue(text, "pushgw_workers") == 2
                    && (metricValue(text, "pushgw_connections{worker=\"0\"}") ?? 0)
                        + (metricValue(text, "pushgw_connections{worker=\"1\"}") ?? 0) == 2
            }, "\(text)")
        let before = try #require(metricValue(text, "pushgw_pushes_total"))
        let storedBefore = try #require(metricValue(text, "pushgw_stored_total"))
        let deliveriesBefore = try #require(metricValue(text, "pushgw_deliveries_total"))
        let timedBefore = try #require(metricValue(text, "pushgw_push_delivery_seconds_count"))

        // Each push on a fresh HTTP connection, so both workers take some (SO_REUSEPORT spreads connections).
        for index in 0..<4 {
            let response = try await gateway.push(pushBody(users: ["m-1"], payload: "{\"n\":\(index)}", store: false))
            #expect(response.status == 200, "\(response)")
        }
        for index in 0..<3 {
            let response = try await gateway.push(pushBody(users: ["m-2"], payload: "{\"s\":\(index)}", store: true))
            #expect(response.status == 200, "\(response)")
        }
        for _ in 0..<4 { _ = try await clients[0].readFrame() }
        for _ in 0..<3 { _ = try await clients[1].readFrame() }

        let counted = try await eventually(timeout: 5) {
            text = try await gateway.metrics().text
            return metricValue(text, "pushgw_pushes_total") == before + 7
                && metricValue(text, "pushgw_stored_total") == storedBefore + 3
                && metricValue(text, "pushgw_deliveries_total") == deliveriesBefore + 7
                && metricValue(text, "pushgw_push_delivery_seconds_count") == timedBefore + 3
        }
        #expect(counted, "\(text)")

        let response = try await gateway.metrics()
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        for family in [
            "# TYPE pushgw_pushes_total counter", "# TYPE pushgw_connections_accepted_total counter",
            "# TYPE pushgw_connections_closed_total counter", "# TYPE pushgw_connections gauge",
            "# TYPE pushgw_resident_memory_bytes gauge", "# TYPE pushgw_write_queue_bytes gauge",
            "# TYPE pushgw_redis_up gauge", "# TYPE pushgw_push_delivery_seconds histogram",
            "# TYPE pushgw_redis_latency_seconds histogram", "# HELP pushgw_deliveries_total ",
        ] {
            #expect(response.text.contains(family + (family.hasPrefix("# HELP") ? "" : "\n")), "\(family)")
        }
        #expect(metricValue(response.text, "pushgw_connections_authenticated_total") == 2)
        #expect(metricValue(response.text, "pushgw_redis_up") == 1)
        #expect((metricValue(response.text, "pushgw_redis_latency_seconds_count") ?? 0) > 0)
        #expect(metricValue(response.text, "pushgw_push_delivery_seconds_bucket{le=\"+Inf\"}") == timedBefore + 3)
        #expect((metricValue(response.text, "pushgw_resident_memory_bytes{worker=\"1\"}") ?? 0) > 1_000_000)
    }

    /// A kicked client shows up in the closes by reason, and `/metrics` needs no API key.
    @Test func closesByReasonWithoutKey() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_API_KEYS": "secret-key"])
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["mk"])
        defer { clients.forEach { $0.close() } }
        #expect(try await gateway.admin("kick mk") == ["OK kicked 1"])
        var text = ""
        #expect(
            try await eventually {
                let response = try await gateway.metrics()
                text = response.text
                return response.status == 200
                    && metricValue(text, "pushgw_connections_closed_total{reason=\"kicked\"}") == 1
            }, "\(text)")
    }
}

@Suite("Logs", .timeLimit(.minutes(1)))
struct LogTests {
    /// With Redis down every AUTH fails with the same warning: three lines pass per 10 s, the rest are counted
    /// and reported in one line when the window ends.
    @Test func repeatedWarningsAreRateLimited() async throws {
        let gateway = try await GatewayProcess.start(redis: .unreachable)
        defer { gateway.stop() }
        for index in 0..<10 {
            let client = try await WireClient.connect(gateway)
            try client.send(op: Op.auth, seq: 1, text: authBody(mid: .string("rl-\(index)"), key: "k"))
            // With Redis unreachable the workers start accepting only after their 5 s fallback: the first
            // connection waits in the backlog until then.
            let frames = try await client.readUntilClosed(timeout: 10)
            #expect(frames.first?.op == Op.disconnect, "\(frames)")
        }
        let message = "AUTH could not reach storage"
        #expect(gateway.log.components(separatedBy: message).count - 1 == 3, "\(gateway.log.suffix(3000))")
        let reported = try await eventually(timeout: 14) {
            gateway.log.contains("repeated log lines suppressed") && gateway.log.contains("suppressed=7")
        }
        #expect(reported, "\(gateway.log.suffix(3000))")
    }
}
