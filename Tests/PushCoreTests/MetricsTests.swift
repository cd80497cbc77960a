import Logging
import Testing

@testable import PushCore

@Suite struct HistogramTests {
    /// A value equal to a bound lands in that bound's bucket (Prometheus's `le` is "less than or equal").
    @Test func boundsAreInclusive() {
        var histogram = Histogram(bounds: [1, 2, 5])
        for value in [0.5, 1, 1.5, 2, 4, 5, 7, -1] { histogram.observe(value) }
        #expect(histogram.counts == [3, 2, 2, 1])
        #expect(histogram.cumulativeCounts == [3, 5, 7, 8])
        #expect(histogram.count == 8)
        #expect(histogram.sum == 20)
    }

    /// NaN has no bucket and is not counted.
    @Test func ignoresNaN() {
        var histogram = Histogram(bounds: [1])
        histogram.observe(.nan)
        #expect(histogram.count == 0)
        #expect(histogram.quantile(0.5) == nil)
    }

    /// Quantiles interpolate inside the bucket holding the rank, as `histogram_quantile` does.
    @Test func quantileInterpolates() throws {
        var histogram = Histogram(bounds: [1, 2, 4])
        for _ in 0..<50 { histogram.observe(0.5) }
        for _ in 0..<50 { histogram.observe(3) }
        #expect(try #require(histogram.quantile(0.5)) == 1)
        #expect(abs(try #require(histogram.quantile(0.75)) - 3) < 1e-9)
        #expect(try #require(histogram.quantile(1)) == 4)
        #expect(try #require(histogram.quantile(0.25)) == 0.5)
    }

    /// A rank in the +Inf bucket answers the highest finite bound.
    @Test func quantileInInfinityBucket() {
        var histogram = Histogram(bounds: [1, 2])
        histogram.observe(100)
        #expect(histogram.quantile(0.99) == 2)
    }

    /// Histograms add bucket by bucket, and a later total minus an earlier one is what happened in between.
    @Test func addAndSubtract() {
        var first = Histogram(bounds: [1, 2])
        first.observe(0.5)
        var second = Histogram(bounds: [1, 2])
        second.observe(1.5)
        second.observe(9)
        var sum = first
        sum.add(second)
        #expect(sum.counts == [1, 1, 1])
        #expect(sum.sum == 11)
        let delta = sum.subtracting(first)
        #expect(delta == second)
        // A series that went back (reset) never yields negative counts.
        #expect(first.subtracting(sum).count == 0)
    }

    /// Histograms with other bounds are not mixed in.
    @Test func addIgnoresOtherBounds() {
        var histogram = Histogram(bounds: [1])
        var other = Histogram(bounds: [2])
        other.observe(1)
        histogram.add(other)
        #expect(histogram.count == 0)
    }

    @Test func jsonRoundTrip() throws {
        var histogram = Histogram()
        for value in [0.0001, 0.003, 0.2, 42] { histogram.observe(value) }
        var writer = JSONWriter()
        histogram.write(to: &writer)
        let decoded = Histogram(json: try JSONParser.parse(writer.bytes))
        #expect(decoded == histogram)
        #expect(Histogram(json: try JSONParser.parse("{\"c\":[1,2],\"s\":1}")) == nil)
    }
}

@Suite struct PrometheusTextTests {
    @Test(arguments: [
        (1.0, "1"), (0.005, "0.005"), (2.5, "2.5"), (0, "0"), (-3, "-3"), (Double.infinity, "+Inf"),
        (-Double.infinity, "-Inf"), (Double.nan, "NaN"), (1e20, "1e+20"),
    ])
    func formatsValues(_ value: Double, _ expected: String) {
        #expect(PrometheusText.format(value) == expected)
    }

    @Test func escapesLabelsAndHelp() {
        var text = PrometheusText()
        text.family("m", .gauge, help: "a \\ b\nc \"q\"")
        text.sample("m", 1, labels: [("k", "x\"y\\z\nw")])
        #expect(text.string == "# HELP m a \\\\ b\\nc \"q\"\n# TYPE m gauge\nm{k=\"x\\\"y\\\\z\\nw\"} 1\n")
    }

    /// A histogram is cumulative buckets ending with +Inf, then `_sum` and `_count`.
    @Test func rendersHistogram() {
        var histogram = Histogram(bounds: [0.1, 1])
        histogram.observe(0.0625)
        histogram.observe(0.5)
        histogram.observe(3)
        var text = PrometheusText()
        text.family("lat_seconds", .histogram, help: "Latency.")
        text.histogram("lat_seconds", histogram, labels: [("w", "0")])
        #expect(
            text.string == """
                # HELP lat_seconds Latency.
                # TYPE lat_seconds histogram
                lat_seconds_bucket{w="0",le="0.1"} 1
                lat_seconds_bucket{w="0",le="1"} 2
                lat_seconds_bucket{w="0",le="+Inf"} 3
                lat_seconds_sum{w="0"} 3.5625
                lat_seconds_count{w="0"} 3

                """)
    }
}

/// Snapshots as a worker would send them.
private func snapshot(
    pid: Int, index: Int, time: Double, connections: Int = 0, accepted: Int = 0, pushes: Int = 0,
    closes: [CloseReason.Kind: Int] = [:], delivery: [Double] = []
) -> WorkerSnapshot {
    var snapshot = WorkerSnapshot(pid: pid, index: index, node: "n\(pid)", time: time, startedAt: 1_700_000_000)
    snapshot.connections = connections
    snapshot.users = connections
    snapshot.residentBytes = 1000 * pid
    snapshot.redisUp = true
    snapshot.totals[.accepted] = accepted
    snapshot.totals[.pushes] = pushes
    snapshot.totals.closes = closes
    for value in delivery { snapshot.totals.pushDelivery.observe(value) }
    return snapshot
}

@Suite struct GatewayMetricsTests {
    /// Rates come from two snapshots of the same worker over their own clock, and add up across workers.
    @Test func ratesPerWorkerAndSummed() {
        var metrics = GatewayMetrics()
        metrics.record(snapshot(pid: 1, index: 0, time: 10, accepted: 0, closes: [.peerClosed: 1]))
        metrics.record(snapshot(pid: 2, index: 1, time: 10.3, accepted: 5))
        metrics.record(snapshot(pid: 1, index: 0, time: 12, accepted: 8, closes: [.peerClosed: 5]))
        metrics.record(snapshot(pid: 2, index: 1, time: 11.3, accepted: 7))
        #expect(metrics.workers[1]?.rates[.accepted] == 4)
        #expect(metrics.workers[2]?.rates[.accepted] == 2)
        #expect(metrics.rates[.accepted] == 6)
        #expect(metrics.closeRates[.peerClosed] == 2)
        #expect(metrics.totals[.accepted] == 15)
    }

    /// An extra snapshot right after another does not become the base of a rate (no spike from a short interval).
    @Test func shortIntervalsKeepTheBase() {
        var metrics = GatewayMetrics()
        metrics.record(snapshot(pid: 1, index: 0, time: 10, accepted: 0))
        metrics.record(snapshot(pid: 1, index: 0, time: 10.01, accepted: 1))
        #expect(metrics.workers[1]?.rates[.accepted] == nil)
        metrics.record(snapshot(pid: 1, index: 0, time: 11, accepted: 2))
        #expect(metrics.workers[1]?.rates[.accepted] == 2)
        #expect(metrics.totals[.accepted] == 2)
    }

    /// A worker that exits keeps its counts in the totals, so gateway-wide counters never go back.
    @Test func retiredWorkersStayCounted() {
        var metrics = GatewayMetrics()
        metrics.record(snapshot(pid: 1, index: 0, time: 1, pushes: 10, closes: [.kicked: 2], delivery: [0.001]))
        metrics.record(snapshot(pid: 2, index: 0, time: 1, pushes: 1))
        metrics.retire(pid: 1)
        metrics.retire(pid: 99)
        #expect(metrics.workers.keys.sorted() == [2])
        #expect(metrics.totals[.pushes] == 11)
        #expect(metrics.totals.closes[.kicked] == 2)
        #expect(metrics.totals.pushDelivery.count == 1)
    }

    /// Recent percentiles cover the samples of the last `window` seconds only.
    @Test func recentWindow() {
        var metrics = GatewayMetrics(window: 2)
        metrics.record(snapshot(pid: 1, index: 0, time: 1, delivery: [5]))
        metrics.sample()
        metrics.record(snapshot(pid: 1, index: 0, time: 2, delivery: [5, 0.001]))
        metrics.sample()
        #expect(metrics.recent.pushDelivery.count == 1)
        metrics.sample()
        metrics.sample()
        #expect(metrics.recent.pushDelivery.count == 0)
        #expect(metrics.totals.pushDelivery.count == 2)
    }
}

@Suite struct GatewayReportTests {
    private func report() -> GatewayReport {
        var metrics = GatewayMetrics()
        metrics.record(snapshot(pid: 11, index: 0, time: 1, connections: 3, pushes: 4))
        metrics.record(snapshot(pid: 12, index: 1, time: 1, connections: 2, pushes: 1, delivery: [0.002, 0.004]))
        metrics.record(snapshot(pid: 13, index: 1, time: 1, connections: 1))
        return GatewayReport(
            metrics: metrics,
            processes: [
                .init(pid: 12, index: 1, generation: 1, stopping: true),
                .init(pid: 11, index: 0, generation: 2, stopping: false),
                .init(pid: 13, index: 1, generation: 2, stopping: false),
                .init(pid: 14, index: 2, generation: 2, stopping: false),
            ],
            uptime: 65.4, generation: 2, draining: false, restarts: 1)
    }

    /// `stats` names every SPEC §6 figure, with one line per worker process.
    @Test func statsLines() {
        let lines = report().statsLines()
        for expected in [
            "connections 6", "workers 4", "generation 2", "pushes_total 5", "worker_restarts_total 1", "redis_up yes",
            "accepts_per_s 0.0", "closes_per_s.idle_timeout 0.0", "frames_in_per_s 0.0", "frames_out_per_s 0.0",
            "pushes_per_s 0.0", "deliveries_per_s 0.0", "stored_per_s 0.0", "write_queue_bytes 0", "rss_bytes 36000",
        ] {
            #expect(lines.contains(expected), "\(expected) in \(lines)")
        }
        #expect(lines.contains("redis_latency_p50_ms -"), "no Redis round trip recorded")
        #expect(lines.contains { $0.hasPrefix("push_delivery_p99_ms ") && !$0.hasSuffix(" -") })
        let workers = lines.filter { $0.hasPrefix("worker ") }
        #expect(workers.count == 4)
        #expect(workers[0].hasPrefix("worker 0 pid=11 gen=2 state=running connections=3"))
        #expect(workers[1].contains("pid=12") && workers[1].contains("state=stopping"))
        #expect(workers[3] == "worker 2 pid=14 gen=2 state=starting")
    }

    /// `/metrics` adds up the workers; per-worker gauges add the processes of one slot (a reload's overlap).
    @Test func prometheus() {
        let text = String(decoding: report().prometheus(), as: UTF8.self)
        for expected in [
            "# TYPE pushgw_pushes_total counter\npushgw_pushes_total 5\n",
            "pushgw_connections{worker=\"0\"} 3\n", "pushgw_connections{worker=\"1\"} 3\n",
            "pushgw_resident_memory_bytes{worker=\"1\"} 25000\n",
            "pushgw_connections_closed_total{reason=\"write_queue_full\"} 0\n",
            "# TYPE pushgw_push_delivery_seconds histogram\n", "pushgw_push_delivery_seconds_bucket{le=\"+Inf\"} 2\n",
            "pushgw_push_delivery_seconds_bucket{le=\"0.0025\"} 1\n", "pushgw_push_delivery_seconds_count 2\n",
            "pushgw_redis_latency_seconds_count 0\n", "pushgw_redis_up 1\n", "pushgw_workers 4\n",
            "pushgw_worker_restarts_total 1\n",
        ] {
            #expect(text.contains(expected), "\(expected) in:\n\(text)")
        }
        // Every sample line belongs to a family announced with # TYPE before it.
        var announced: Set<String> = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                announced.insert(String(line.split(separator: " ")[2]))
            } else if !line.hasPrefix("#") {
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                let family = ["_bucket", "_sum", "_count"].reduce(name) { name, suffix in
                    name.hasSuffix(suffix) && announced.contains(String(name.dropLast(suffix.count)))
                        ? String(name.dropLast(suffix.count)) : name
                }
                #expect(announced.contains(family), "\(line) has no # TYPE")
            }
        }
    }

    @Test func tailLine() {
        let line = report().tailLine(time: "12:00:00")
        #expect(line.hasPrefix("12:00:00 conns 6 | acc/s 0.0 close/s 0.0 | "))
        #expect(line.contains("deliv p50/p99 "))
        #expect(line.hasSuffix("rss 35.2 KiB"))
    }

    /// `pushgw ctl stats` lays the lines out as tables and keeps every worker.
    @Test func statsTable() {
        let table = StatsTable.render(report().statsLines())
        #expect(table.hasPrefix("pushgw: up 1m 05s, generation 2, 4 workers, Redis up\n"))
        #expect(table.contains("connections  6"))
        #expect(table.contains("push to delivery"))
        let rows = table.split(separator: "\n").filter {
            $0.hasPrefix("0 ") || $0.hasPrefix("1 ") || $0.hasPrefix("2 ")
        }
        #expect(rows.count == 4, "\(table)")
        #expect(!table.contains("\nworker 0 pid="), "worker lines are rendered as a table:\n\(table)")
    }
}

@Suite struct FiguresTests {
    @Test(arguments: [
        (2.345, 1, "2.3"), (2.35, 1, "2.4"), (0.004, 2, "0.00"), (-1.25, 1, "-1.3"), (7, 0, "7"), (0.05, 2, "0.05"),
    ])
    func decimal(_ value: Double, _ places: Int, _ expected: String) {
        #expect(Figures.decimal(value, places) == expected)
    }

    @Test func bytes() {
        #expect(Figures.bytes(512) == "512 B")
        #expect(Figures.bytes(4096) == "4.0 KiB")
        #expect(Figures.bytes(24_641_536) == "23.5 MiB")
    }
}

@Suite struct AdminCommandTests {
    @Test(arguments: [
        ("stats", AdminCommand.stats), ("  STATS  ", .stats), ("tail", .tail), ("conns", .conns(user: nil)),
        ("conns u1", .conns(user: "u1")), ("kick u1", .kick(user: "u1", key: nil)),
        ("kick\tu1 phone", .kick(user: "u1", key: "phone")), ("nodes", .nodes), ("reload", .reload),
        ("drain", .drain), ("log-level DEBUG", .logLevel(.debug)), ("help", .help), ("help me", .help),
    ])
    func parses(_ line: String, _ expected: AdminCommand) throws {
        #expect(try AdminCommand.parse(line).get() == expected)
    }

    @Test(arguments: ["", "bogus", "stats now", "kick", "kick a b c", "conns a b", "log-level", "log-level loud"])
    func refuses(_ line: String) {
        guard case .failure(let error) = AdminCommand.parse(line) else {
            Issue.record("\(line) parsed")
            return
        }
        #expect(!error.message.isEmpty)
    }
}

@Suite struct ControlMessageTests {
    @Test func roundTrips() throws {
        var worker = snapshot(
            pid: 7, index: 1, time: 123.5, connections: 4, accepted: 9, closes: [.kicked: 1], delivery: [0.01])
        worker.redisP50 = 0.0002
        worker.redisP99 = 0.003
        worker.totals.redisLatency.observe(0.0003)
        let messages: [ControlMessage] = [
            .snapshot(worker), .reply(id: 3, lines: ["a \"b\"", "c\\d"]), .metrics(Array("# HELP x y\nx 1\n".utf8)),
            .command(id: 4, name: "kick", arguments: ["u1", "k"]),
        ]
        for message in messages {
            let line = message.line
            #expect(line.last == UInt8(ascii: "\n"))
            #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false, "one line")
            #expect(ControlMessage(line: line.dropLast()) == message)
        }
        #expect(ControlMessage(line: Array("{\"t\":\"other\"}".utf8)) == nil)
        #expect(ControlMessage(line: Array("not json".utf8)) == nil)
    }
}
