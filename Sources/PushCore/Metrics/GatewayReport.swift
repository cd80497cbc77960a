/// The master's figures written out three ways (SPEC §6): `stats` as `name value` lines, `tail` as one line a
/// second, and `/metrics` in Prometheus text. Built fresh each time from the master's state; pure, so every
/// format is tested without processes.
public struct GatewayReport: Sendable {
    /// A worker process as the master knows it, whether or not it has reported yet.
    public struct Process: Sendable {
        public var pid: Int
        public var index: Int
        public var generation: Int
        /// Asked to stop (an old generation after a reload, or the gateway stopping).
        public var stopping: Bool

        public init(pid: Int, index: Int, generation: Int, stopping: Bool) {
            self.pid = pid
            self.index = index
            self.generation = generation
            self.stopping = stopping
        }
    }

    public var metrics: GatewayMetrics
    /// The master's live children, in index order.
    public var processes: [Process]
    /// Seconds since the master started.
    public var uptime: Double
    public var generation: Int
    /// Whether an operator drained the clients (`drain`) and no reload has undone it.
    public var draining: Bool
    /// Workers restarted after dying.
    public var restarts: Int

    public init(
        metrics: GatewayMetrics, processes: [Process], uptime: Double, generation: Int, draining: Bool, restarts: Int
    ) {
        self.metrics = metrics
        self.processes = processes.sorted { ($0.index, $0.generation, $0.pid) < ($1.index, $1.generation, $1.pid) }
        self.uptime = uptime
        self.generation = generation
        self.draining = draining
        self.restarts = restarts
    }

    /// The live workers' latest snapshots.
    private var snapshots: [WorkerSnapshot] { metrics.workers.values.map(\.snapshot) }

    private func sum(_ value: (WorkerSnapshot) -> Int) -> Int { snapshots.reduce(0) { $0 + value($1) } }

    private var redisUp: Bool { !snapshots.isEmpty && snapshots.allSatisfy(\.redisUp) }

    /// The rates shown as SPEC §6 names them, in order.
    private static let shownRates: [(String, WorkerCounter)] = [
        ("accepts_per_s", .accepted), ("frames_in_per_s", .framesIn), ("frames_out_per_s", .framesOut),
        ("pushes_per_s", .pushes), ("deliveries_per_s", .deliveries), ("stored_per_s", .stored),
    ]

    // MARK: - stats

    /// `stats`: one `name value` line per figure, then one `worker <index> key=value …` line per worker process.
    public func statsLines() -> [String] {
        let rates = metrics.rates
        let closeRates = metrics.closeRates
        let totals = metrics.totals
        let recent = metrics.recent
        var lines = [
            "uptime_s \(Int(uptime))",
            "generation \(generation)",
            "workers \(processes.count)",
            "draining \(draining ? "yes" : "no")",
            "connections \(sum(\.connections))",
            "users \(sum(\.users))",
            "http_connections \(sum(\.httpConnections))",
            "write_queue_bytes \(sum(\.writeQueueBytes))",
            "rss_bytes \(sum(\.residentBytes))",
            "redis_up \(redisUp ? "yes" : "no")",
        ]
        lines.append("accepts_per_s \(Figures.decimal(rates[.accepted] ?? 0, 1))")
        lines.append("closes_per_s \(Figures.decimal(closeRates.values.reduce(0, +), 1))")
        for reason in CloseReason.Kind.allCases {
            lines.append("closes_per_s.\(reason.rawValue) \(Figures.decimal(closeRates[reason] ?? 0, 1))")
        }
        for (name, counter) in Self.shownRates.dropFirst() {
            lines.append("\(name) \(Figures.decimal(rates[counter] ?? 0, 1))")
        }
        lines.append("redis_latency_p50_ms \(Figures.milliseconds(recent.redisLatency.quantile(0.5)))")
        lines.append("redis_latency_p99_ms \(Figures.milliseconds(recent.redisLatency.quantile(0.99)))")
        lines.append("push_delivery_p50_ms \(Figures.milliseconds(recent.pushDelivery.quantile(0.5)))")
        lines.append("push_delivery_p99_ms \(Figures.milliseconds(recent.pushDelivery.quantile(0.99)))")
        for counter in WorkerCounter.allCases {
            lines.append("\(counter.rawValue)_total \(totals[counter])")
        }
        lines.append("closed_total \(totals.closedTotal)")
        lines.append("worker_restarts_total \(restarts)")
        for process in processes {
            lines.append(workerLine(process))
        }
        return lines
    }

    private func workerLine(_ process: Process) -> String {
        var fields = ["worker \(process.index)", "pid=\(process.pid)", "gen=\(process.generation)"]
        guard let worker = metrics.workers[process.pid] else {
            fields.append("state=\(process.stopping ? "stopping" : "starting")")
            return fields.joined(separator: " ")
        }
        let snapshot = worker.snapshot
        let state = process.stopping ? "stopping" : snapshot.draining ? "draining" : "running"
        fields += [
            "state=\(state)",
            "connections=\(snapshot.connections)",
            "users=\(snapshot.users)",
            "write_queue_bytes=\(snapshot.writeQueueBytes)",
            "rss_bytes=\(snapshot.residentBytes)",
            "redis=\(snapshot.redisUp ? "up" : "down")",
            "redis_p50_ms=\(Figures.milliseconds(snapshot.redisP50))",
            "redis_p99_ms=\(Figures.milliseconds(snapshot.redisP99))",
            "accepts_per_s=\(Figures.decimal(worker.rates[.accepted] ?? 0, 1))",
            "node=\(snapshot.node)",
        ]
        return fields.joined(separator: " ")
    }

    // MARK: - tail

    /// `tail`: one line of the figures that move, prefixed with `time` (the caller's clock).
    public func tailLine(time: String) -> String {
        let rates = metrics.rates
        let closeRates = metrics.closeRates
        let recent = metrics.recent
        func rate(_ counter: WorkerCounter) -> String { Figures.decimal(rates[counter] ?? 0, 1) }
        var closes = "close/s \(Figures.decimal(closeRates.values.reduce(0, +), 1))"
        let reasons = CloseReason.Kind.allCases.compactMap { reason -> String? in
            guard let value = closeRates[reason], value > 0 else { return nil }
            return "\(reason.rawValue) \(Figures.decimal(value, 1))"
        }
        if !reasons.isEmpty { closes += " (\(reasons.joined(separator: ", ")))" }
        let parts = [
            "\(time) conns \(sum(\.connections))",
            "acc/s \(rate(.accepted)) \(closes)",
            "in/s \(rate(.framesIn)) out/s \(rate(.framesOut))",
            "push/s \(rate(.pushes)) deliv/s \(rate(.deliveries)) stored/s \(rate(.stored))",
            "redis p50/p99 \(Figures.milliseconds(recent.redisLatency.quantile(0.5)))/"
                + "\(Figures.milliseconds(recent.redisLatency.quantile(0.99))) ms",
            "deliv p50/p99 \(Figures.milliseconds(recent.pushDelivery.quantile(0.5)))/"
                + "\(Figures.milliseconds(recent.pushDelivery.quantile(0.99))) ms",
            "wq \(Figures.bytes(sum(\.writeQueueBytes)))",
            "rss \(Figures.bytes(sum(\.residentBytes)))",
        ]
        return parts.joined(separator: " | ")
    }

    // MARK: - /metrics

    /// The Prometheus exposition of every figure, aggregated across workers.
    public func prometheus() -> [UInt8] {
        var text = PrometheusText()
        let totals = metrics.totals
        text.single("pushgw_uptime_seconds", .gauge, help: "Seconds since the master process started.", uptime)
        text.single("pushgw_workers", .gauge, help: "Worker processes running.", Double(processes.count))
        text.single(
            "pushgw_draining", .gauge, help: "1 while the clients are drained by the admin command `drain`.",
            draining ? 1 : 0)
        text.single(
            "pushgw_worker_restarts_total", .counter, help: "Worker processes restarted after they died.",
            Double(restarts))
        for counter in WorkerCounter.allCases {
            text.single(counter.metricName, .counter, help: counter.help, Double(totals[counter]))
        }
        text.family("pushgw_connections_closed_total", .counter, help: "Client connections closed, by reason.")
        for reason in CloseReason.Kind.allCases {
            text.sample(
                "pushgw_connections_closed_total", Double(totals.closes[reason] ?? 0),
                labels: [("reason", reason.rawValue)])
        }

        // Per-worker gauges are labelled by slot; during a reload the old and the new process of a slot add up.
        var bySlot: [Int: (connections: Int, resident: Int)] = [:]
        for snapshot in snapshots {
            bySlot[snapshot.index, default: (0, 0)].connections += snapshot.connections
            bySlot[snapshot.index, default: (0, 0)].resident += snapshot.residentBytes
        }
        let slots = bySlot.keys.sorted()
        text.family("pushgw_connections", .gauge, help: "Open client connections, by worker.")
        for slot in slots {
            text.sample("pushgw_connections", Double(bySlot[slot]!.connections), labels: [("worker", String(slot))])
        }
        text.single(
            "pushgw_users", .gauge, help: "Users with a connection, summed over workers (a user on two counts twice).",
            Double(sum(\.users)))
        text.single(
            "pushgw_http_connections", .gauge, help: "Open HTTP API connections.", Double(sum(\.httpConnections)))
        text.single(
            "pushgw_write_queue_bytes", .gauge, help: "Bytes queued for sending to clients and HTTP peers.",
            Double(sum(\.writeQueueBytes)))
        text.family("pushgw_resident_memory_bytes", .gauge, help: "Resident memory of the worker processes, by worker.")
        for slot in slots {
            text.sample(
                "pushgw_resident_memory_bytes", Double(bySlot[slot]!.resident), labels: [("worker", String(slot))])
        }
        text.single(
            "pushgw_redis_up", .gauge, help: "1 when every worker's Redis connection is ready, else 0.", redisUp ? 1 : 0
        )
        text.family(
            "pushgw_push_delivery_seconds", .histogram,
            help: "Seconds from a stored push's arrival to its frame being queued on a live connection.")
        text.histogram("pushgw_push_delivery_seconds", totals.pushDelivery)
        text.family("pushgw_redis_latency_seconds", .histogram, help: "Round-trip seconds of Redis commands.")
        text.histogram("pushgw_redis_latency_seconds", totals.redisLatency)
        return text.bytes
    }
}

/// Number formatting for operators (PushCore has no Foundation, hence no `String(format:)`).
public enum Figures {
    /// `value` rounded to `places` decimals: `decimal(2.345, 1)` is `2.3`.
    public static func decimal(_ value: Double, _ places: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int64((abs(value) * scale).rounded())
        let sign = value < 0 && scaled != 0 ? "-" : ""
        let whole = scaled / Int64(scale)
        guard places > 0 else { return "\(sign)\(whole)" }
        var fraction = String(scaled % Int64(scale))
        while fraction.count < places { fraction = "0" + fraction }
        return "\(sign)\(whole).\(fraction)"
    }

    /// Seconds as milliseconds with two decimals, `-` when unknown.
    public static func milliseconds(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        return decimal(seconds * 1000, 2)
    }

    /// A byte count for people: `512 B`, `4.0 KiB`, `23.5 MiB`, `1.20 GiB`.
    public static func bytes(_ count: Int) -> String {
        let value = Double(count)
        if count < 1024 { return "\(count) B" }
        if value < 1024 * 1024 { return "\(decimal(value / 1024, 1)) KiB" }
        if value < 1024 * 1024 * 1024 { return "\(decimal(value / 1024 / 1024, 1)) MiB" }
        return "\(decimal(value / 1024 / 1024 / 1024, 2)) GiB"
    }
}
