import ArgumentParser
import Glibc
import PushCore
import PushPosix

/// `connect`: opens N connections from several processes, authenticates each as its own user, heartbeats, holds
/// them, and reports the connect rate, failures and unexpected closes; with `--gateway-pid`, the gateway's
/// memory per connection.
struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open and hold N authenticated connections; connect rate, failures, closes, gateway memory.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var report: ReportOptions

    @Option(help: "Connections, one user each.")
    var connections = 10_000
    @Option(help: "Seconds to hold them once all are up.")
    var hold = 10.0
    @Option(help: "Write this JSON file once all connections are up (they are held meanwhile).")
    var readyFile: String?

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard hold >= 0, hold <= 3600 else { throw ValidationError("--hold must be 0…3600 seconds") }
    }

    func run() throws {
        let load = ProcessTree.loadAverage()
        let group = ChildGroup()
        defer { group.stopAll() }
        let rss0 = report.gatewayPid.map { ProcessTree.residentKB(of: $0) }
        let kernel0 = ProcessTree.kernelSocketKB()
        let fleet = try Fleet(
            group: group, target: target, client: client, count: connections,
            lifetime: client.connectTimeout(for: connections) + hold + 300)
        let before = Usage.sample(report, group)
        let summary = try fleet.connectAll(timeout: client.connectTimeout(for: connections))
        let connected = Usage.sample(report, group)
        note("connect: \(Format.count(summary.online)) online in \(Format.seconds(summary.seconds)); holding")

        // Give the gateway a moment to finish per-connection work (session writes) before reading its memory.
        group.idle(1)
        let rss1 = report.gatewayPid.map { ProcessTree.residentKB(of: $0) }
        let kernel1 = ProcessTree.kernelSocketKB()
        let benchKB = fleet.children.reduce(0) { $0 + (ProcessTree.statusField($1.pid, "VmRSS:") ?? 0) }
        let online = max(1, summary.online)
        let gatewayBytes = zip2(rss0, rss1).map { pair in Double(pair.1 - pair.0) * 1024 / Double(online) }
        let kernelBytes = Double(kernel1 - kernel0) * 1024 / Double(online)
        if let readyFile {
            var writer = JSONWriter()
            writer.object {
                $0.field("online", summary.online)
                $0.field("failed", summary.failed)
                $0.field("connect_seconds", summary.seconds, decimals: 3)
                if let rss0, let rss1 {
                    $0.field("gateway_rss_kb_0", rss0)
                    $0.field("gateway_rss_kb_n", rss1)
                }
            }
            try writeFile(readyFile, writer.bytes + [UInt8(ascii: "\n")])
        }

        let holdStart = Posix.monotonicNanos()
        var lastNote = holdStart
        while Double(Posix.monotonicNanos() &- holdStart) / 1e9 < hold {
            group.idle(min(0.5, hold - Double(Posix.monotonicNanos() &- holdStart) / 1e9))
            if Posix.monotonicNanos() &- lastNote > 5_000_000_000 {
                lastNote = Posix.monotonicNanos()
                let totals = fleet.totals()
                note("hold: \(Format.count(totals.online)) online, \(totals.closes) closed unexpectedly")
            }
        }
        let held = Usage.sample(report, group)
        let result = try fleet.report()
        group.stopAll()

        var table = Table(
            "connect: \(Format.count(connections)) connections from \(Format.plural(fleet.children.count, "process")) "
                + "and \(fleet.sourceCount) source addresses, held \(Format.seconds(hold))")
        table.add("authenticated", "\(Format.count(summary.online)) of \(Format.count(connections))")
        table.add("failed", "\(Format.count(summary.failed)): \(summary.failures.reasonsLine)")
        let retried = "\(Format.count(summary.retries)): \(summary.retryReasons.reasonsLine)"
        table.add("handshakes retried (DISCONNECT reconnect)", retried)
        table.add("connect + AUTH, all", "\(Format.seconds(summary.seconds)) (\(Format.rate(summary.rate)))")
        table.add("connect → AUTH_REPLY per connection", summary.latency.line)
        table.add("closed unexpectedly while held", "\(result.unexpectedCloses): \(result.closeReasons.reasonsLine)")
        table.add(
            "heartbeats sent / replies",
            "\(Format.count(result.heartbeatsSent)) / \(Format.count(result.heartbeatReplies))")
        if let rss0, let rss1, let gatewayBytes {
            table.add("gateway RSS (master + workers)", "\(Format.count(rss0)) kB → \(Format.count(rss1)) kB")
            table.add("gateway RSS per connection", "\(Format.count(Int(gatewayBytes.rounded()))) B")
        }
        table.add(
            "bench RSS per connection",
            "\(Format.count(benchKB * 1024 / online)) B "
                + "(\(Format.count(benchKB)) kB in \(Format.plural(fleet.children.count, "process")))"
        )
        table.add(
            "kernel memory per connection (both ends)",
            "\(Format.count(Int(kernelBytes.rounded()))) B (slab + TCP buffers, machine-wide)")
        table.add("CPU while connecting", Usage.line(before, connected, report))
        table.add("CPU while holding", Usage.line(connected, held, report))
        table.add("machine load average at start (1 min)", Format.fixed(load, 2))
        table.print()

        try writeResults(report.json, scenario: "connect", startLoad: load) {
            $0.key("parameters")
            $0.object {
                $0.field("connections", connections)
                $0.field("processes", fleet.children.count)
                $0.field("source_addresses", fleet.sourceCount)
                $0.field("in_flight", client.inFlight ?? 2000)
                $0.field("hold_seconds", hold, decimals: 1)
                $0.field("heartbeat_seconds", client.heartbeat, decimals: 1)
            }
            $0.key("results")
            $0.object {
                $0.field("authenticated", summary.online)
                $0.field("failed", summary.failed)
                $0.key("failures")
                summary.failures.write(into: &$0)
                $0.field("retries", summary.retries)
                $0.field("connect_seconds", summary.seconds, decimals: 3)
                $0.field("connects_per_second", summary.rate, decimals: 0)
                $0.field("connect_latency", summary.latency)
                $0.field("unexpected_closes", result.unexpectedCloses)
                $0.key("close_reasons")
                result.closeReasons.write(into: &$0)
                $0.field("heartbeats_sent", result.heartbeatsSent)
                $0.field("heartbeat_replies", result.heartbeatReplies)
                if let rss0, let rss1, let gatewayBytes {
                    $0.field("gateway_rss_kb_0", rss0)
                    $0.field("gateway_rss_kb_n", rss1)
                    $0.field("gateway_bytes_per_connection", gatewayBytes, decimals: 0)
                }
                $0.field("kernel_bytes_per_connection_pair", kernelBytes, decimals: 0)
                $0.field("bench_rss_kb", benchKB)
                $0.key("cpu_connecting")
                Usage.write(before, connected, into: &$0)
                $0.key("cpu_holding")
                Usage.write(connected, held, into: &$0)
            }
        }
    }
}

/// Both values, or nil.
func zip2<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}
