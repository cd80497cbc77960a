/// `pushgw ctl stats`: the admin socket's `name value` lines laid out as tables for a person.
public enum StatsTable {
    /// Renders `stats` reply lines; unknown names are listed at the end so nothing the gateway says is lost.
    public static func render(_ lines: [String]) -> String {
        var values: [String: String] = [:]
        var order: [String] = []
        var workers: [[String: String]] = []
        var notifiers: [[String: String]] = []
        for line in lines {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if parts[0] == "worker" || parts[0] == "notifier" {
                var fields = ["index": String(parts[1].prefix { $0 != " " })]
                for field in parts[1].split(separator: " ").dropFirst() {
                    let pair = field.split(separator: "=", maxSplits: 1).map(String.init)
                    if pair.count == 2 { fields[pair[0]] = pair[1] }
                }
                if parts[0] == "worker" { workers.append(fields) } else { notifiers.append(fields) }
            } else {
                values[parts[0]] = parts[1]
                order.append(parts[0])
            }
        }
        var used: Set<String> = []
        func value(_ name: String) -> String {
            used.insert(name)
            return values[name] ?? "-"
        }
        func bytes(_ text: String) -> String { Int(text).map(Figures.bytes) ?? text }
        func ms(_ text: String) -> String { text == "-" ? "-" : "\(text) ms" }

        var out: [String] = []
        let uptime = Int(value("uptime_s")).map(duration) ?? "-"
        out.append(
            "pushgw: up \(uptime), generation \(value("generation")), \(value("workers")) workers, "
                + "Redis \(value("redis_up") == "yes" ? "up" : "DOWN")")
        if value("draining") == "yes" { out.append("DRAINING: clients are being sent away; `reload` takes them again") }
        out.append("")
        out += table([
            [
                "connections", value("connections"), "users", value("users"), "http connections",
                value("http_connections"),
            ],
            ["write queue", bytes(value("write_queue_bytes")), "resident", bytes(value("rss_bytes")), "", ""],
        ])
        out.append("")
        out += table([
            ["per second", "accepts", "closes", "frames in", "frames out", "pushes", "deliveries", "stored"],
            [
                "", value("accepts_per_s"), value("closes_per_s"), value("frames_in_per_s"), value("frames_out_per_s"),
                value("pushes_per_s"), value("deliveries_per_s"), value("stored_per_s"),
            ],
        ])
        let reasons = order.filter { $0.hasPrefix("closes_per_s.") }.compactMap { name -> String? in
            let rate = value(name)
            guard let number = Double(rate), number > 0 else { return nil }
            return "\(name.dropFirst("closes_per_s.".count)) \(rate)"
        }
        out.append("closes/s by reason: \(reasons.isEmpty ? "none" : reasons.joined(separator: ", "))")
        out.append("")
        out += table([
            ["latency, last 10 s", "p50", "p99"],
            ["Redis round trip", ms(value("redis_latency_p50_ms")), ms(value("redis_latency_p99_ms"))],
            ["push to delivery", ms(value("push_delivery_p50_ms")), ms(value("push_delivery_p99_ms"))],
        ])
        out.append("")
        let totals = order.filter { $0.hasSuffix("_total") }.map {
            [String($0.dropLast("_total".count)).replacingAll("_", with: " "), value($0)]
        }
        out.append("since start")
        out += table(stride(from: 0, to: totals.count, by: 4).map { Array(totals[$0..<min($0 + 4, totals.count)].joined()) })
        out.append("")
        var rows = [
            ["worker", "pid", "gen", "state", "conns", "users", "write queue", "resident", "redis", "p99", "node"]
        ]
        for worker in workers {
            rows.append([
                worker["index"] ?? "-", worker["pid"] ?? "-", worker["gen"] ?? "-", worker["state"] ?? "-",
                worker["connections"] ?? "-", worker["users"] ?? "-", worker["write_queue_bytes"].map(bytes) ?? "-",
                worker["rss_bytes"].map(bytes) ?? "-", worker["redis"] ?? "-", worker["redis_p99_ms"].map(ms) ?? "-",
                worker["node"] ?? "-",
            ])
        }
        out += table(rows)
        if values["notify_queue_lag"] != nil || !notifiers.isEmpty {
            out.append("")
            out += notifications(notifiers, value, order: order)
        }
        let rest = order.filter { !used.contains($0) && !$0.hasPrefix("closes_per_s.") }
        if !rest.isEmpty {
            out.append("")
            out += rest.map { "\($0) \(values[$0] ?? "")" }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The notifiers' section (SPEC §10): the queue, the counters per provider, the notifier processes.
    private static func notifications(
        _ notifiers: [[String: String]], _ value: (String) -> String, order: [String]
    ) -> [String] {
        var out = table([
            ["notifications", "queued", "pending", "oldest pending", "dead letters", "streams"],
            [
                "", value("notify_queue_lag"), value("notify_pending"),
                value("notify_oldest_pending_s") == "-" ? "-" : value("notify_oldest_pending_s") + " s",
                value("notify_dead_letters"), value("notify_streams"),
            ],
        ])
        let counters = order.filter { $0.hasPrefix("notifications.") }
        let providers = counters.compactMap { $0.split(separator: ".").dropFirst().first.map(String.init) }
        var seen: Set<String> = []
        var rows = [["provider", "sent", "failed", "retried", "invalid"]]
        for provider in providers where seen.insert(provider).inserted {
            rows.append([provider] + ["sent", "failed", "retried", "invalid"].map { result in
                let name = "notifications.\(provider).\(result)"
                return counters.contains(name) ? value(name) : "0"
            })
        }
        if rows.count > 1 { out += [""] + table(rows) }
        if !notifiers.isEmpty {
            var processes = [["notifier", "pid", "gen", "up"]]
            for notifier in notifiers {
                processes.append([
                    notifier["index"] ?? "-", notifier["pid"] ?? "-", notifier["gen"] ?? "-",
                    notifier["up_s"].flatMap(Int.init).map(duration) ?? "-",
                ])
            }
            out += [""] + table(processes)
        }
        return out
    }

    /// Columns padded to their widest cell, two spaces apart; trailing spaces trimmed.
    static func table(_ rows: [[String]]) -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            var line = ""
            for (index, cell) in row.enumerated() {
                line += cell
                if index < row.count - 1 { line += String(repeating: " ", count: widths[index] - cell.count + 2) }
            }
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    /// `2h 03m`, `4m 05s`, `12s`.
    static func duration(_ seconds: Int) -> String {
        let hours = seconds / 3600
        let minutes = seconds % 3600 / 60
        let secs = seconds % 60
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if hours >= 24 { return "\(hours / 24)d \(hours % 24)h" }
        if hours > 0 { return "\(hours)h \(two(minutes))m" }
        if minutes > 0 { return "\(minutes)m \(two(secs))s" }
        return "\(secs)s"
    }
}
