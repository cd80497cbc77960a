import ArgumentParser
import Glibc
import PushCore

/// `unicast`: N online users; HTTP clients push to random ones (transient, or stored with `--store`) at a rate
/// or flat out; the receivers measure push → receive latency. With `--half-peak`, a second phase runs at half
/// the push rate the flat-out phase reached: the latency target is stated at half peak.
struct Unicast: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push to random online users over pipelined HTTP; pushes/s, deliveries/s, latency.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var report: ReportOptions

    @Option(help: "Online users, one connection each.")
    var users = 10_000
    @Option(help: "Pusher processes.")
    var senders = 1
    @Option(help: "HTTP connections over all pushers (keep-alive).")
    var httpConnections = 16
    @Option(help: "Requests pipelined per HTTP connection.")
    var depth = 8
    @Option(help: "Pushes per request (above 1: POST /v1/push/batch).")
    var batch = 1
    @Option(help: "Pushes per second over all pushers; 0: flat out.")
    var rate = 0.0
    @Option(help: "Seconds of pushing per phase.")
    var duration = 10.0
    @Flag(help: "Stored pushes (store:true): Redis assigns seqs; receivers check order and ACK.")
    var store = false
    @Flag(inversion: .prefixedNo, help: "After the phase at --rate, run a second one at half the push rate it reached.")
    var halfPeak = false
    @Option(help: "Seconds to wait for stragglers after the pushers stop.")
    var drain = 5.0
    @Option(help: "Seconds between a receiver's ACKs of its newest stored seq (0: none).")
    var ackInterval = 1.0
    @Option(help: "Extra payload bytes.")
    var payloadBytes = 0
    @Option(help: "Application operation of the pushes.")
    var op = 1000

    func validate() throws {
        guard users >= 1 else { throw ValidationError("--users must be at least 1") }
        guard senders >= 1, httpConnections >= senders else {
            throw ValidationError("--senders must be at least 1 and at most --http-connections")
        }
        guard depth >= 1, batch >= 1, batch <= 1000 else { throw ValidationError("--depth ≥ 1, --batch 1…1000") }
        guard duration > 0, duration <= 600 else { throw ValidationError("--duration must be 0…600 seconds") }
        guard drain >= 0, drain <= 120 else { throw ValidationError("--drain must be 0…120 seconds") }
    }

    struct Phase {
        var rate: Double
        var pushers: PusherSummary
        var receivers: ReceiverSummary
        var usage: (Usage, Usage)

        var deliveryRate: Double {
            let span = Double(receivers.lastDelivery &- pushers.started) / 1e9
            return receivers.lastDelivery > pushers.started && span > 0 ? Double(receivers.delivered) / span : 0
        }
    }

    func run() throws {
        let load = ProcessTree.loadAverage()
        let group = ChildGroup()
        defer { group.stopAll() }
        let lifetime = client.connectTimeout(for: users) + 2 * (duration + drain + 60) + 300
        let fleet = try Fleet(
            group: group, target: target, client: client, count: users, lifetime: lifetime,
            extra: store && ackInterval > 0 ? ["--ack-interval", String(ackInterval)] : [])
        let connect = try fleet.connectAll(timeout: client.connectTimeout(for: users))
        note("connect: \(Format.count(connect.online)) online in \(Format.seconds(connect.seconds))")
        _ = try fleet.report()  // start the first phase from zero

        var phases = [try phase(rate: rate, fleet: fleet, group: group)]
        if halfPeak {
            let half = max(1, (phases[0].pushers.pushRate / 2).rounded())
            note("half peak: \(Format.rate(half))")
            phases.append(try phase(rate: half, fleet: fleet, group: group))
        }
        group.stopAll()
        print(phases, connect: connect, fleet: fleet, load: load)
    }

    private func phase(rate: Double, fleet: Fleet, group: ChildGroup) throws -> Phase {
        let kind = store ? "stored" : "transient"
        note("\(kind) pushes \(rate > 0 ? "at " + Format.rate(rate) : "flat out") for \(Format.seconds(duration))")
        let senders = try Senders(group: group, count: self.senders) { index in
            var arguments = [
                "--host", target.host, "--port", String(target.httpPort), "--mode", "random",
                "--connections",
                String((index + 1) * httpConnections / self.senders - index * httpConnections / self.senders),
                "--depth", String(depth), "--batch", String(batch), "--rate", String(rate / Double(self.senders)),
                "--duration", String(duration), "--users", String(users), "--user-prefix", client.userPrefix,
                "--op", String(op), "--payload-bytes", String(payloadBytes), "--lifetime", String(Int(duration + 120)),
            ]
            if store { arguments.append("--store") }
            return arguments
        }
        let before = Usage.sample(report, group)
        let pushers = try senders.run(timeout: duration + 60) {
            let sent = senders.totals()
            let got = fleet.totals()
            note("\(Format.count(sent.ok)) pushes answered, \(Format.count(got.delivered)) delivered")
        }
        let after = Usage.sample(report, group)
        fleet.awaitDeliveries(pushers.onlineSum, stall: 1, timeout: drain)
        let receivers = try fleet.report()
        return Phase(rate: rate, pushers: pushers, receivers: receivers, usage: (before, after))
    }

    private func print(_ phases: [Phase], connect: ConnectSummary, fleet: Fleet, load: Double) {
        let kind = store ? "stored" : "transient"
        let columns = phases.map { $0.rate > 0 ? "at \(Format.rate($0.rate))" : "flat out" }
        let receivers = Format.plural(fleet.children.count, "receiver process")
        var table = Table(
            "unicast (\(kind)): \(Format.count(users)) users on \(receivers); "
                + "\(Format.plural(senders, "pusher process")), \(httpConnections) HTTP connections × depth \(depth), "
                + "batch \(batch); \(Format.seconds(duration)) per phase",
            header: ["measure"] + columns)
        func row(_ label: String, _ value: (Phase) -> String) { table.add([label] + phases.map(value)) }
        row("pushes answered 200") { Format.count($0.pushers.okPushes) }
        row("pushes/s") { Format.rate($0.pushers.pushRate) }
        row("push errors") { $0.pushers.errorsLine }
        row("deliveries expected (online)") { Format.count($0.pushers.onlineSum) }
        row("deliveries received") { Format.count($0.receivers.delivered) }
        row("deliveries/s") { Format.rate($0.deliveryRate) }
        row("push → receive p50") { Format.ms($0.receivers.latency.millis(50)) + " ms" }
        row("push → receive p99") { Format.ms($0.receivers.latency.millis(99)) + " ms" }
        row("push → receive p99.9") { Format.ms($0.receivers.latency.millis(99.9)) + " ms" }
        row("push → receive max") { Format.ms($0.receivers.latency.maxMillis) + " ms" }
        row("HTTP response p50 / p99") {
            Format.ms($0.pushers.httpLatency.millis(50)) + " / " + Format.ms($0.pushers.httpLatency.millis(99)) + " ms"
        }
        if store { row("seq gaps / duplicates") { "\($0.receivers.gaps) / \($0.receivers.duplicates)" } }
        row("connections closed") { "\($0.receivers.unexpectedCloses)" }
        row("CPU") { Usage.line($0.usage.0, $0.usage.1, report) }
        row("CPU per push") { phase in
            let cores = phase.usage.0.cores(until: phase.usage.1)
            let rate = max(1, phase.pushers.pushRate)
            var parts: [String] = []
            if report.gatewayPid != nil { parts.append("gateway \(Format.fixed(cores.gateway * 1e6 / rate, 1))") }
            if !report.redisPid.isEmpty { parts.append("redis \(Format.fixed(cores.redis * 1e6 / rate, 1))") }
            parts.append("bench \(Format.fixed(cores.bench * 1e6 / rate, 1))")
            return parts.joined(separator: " · ") + " µs"
        }
        table.add(["machine load average at start (1 min)", Format.fixed(load, 2)])
        table.print()

        do {
            try writeResults(report.json, scenario: store ? "stored" : "unicast", startLoad: load) {
                $0.key("parameters")
                $0.object {
                    $0.field("users", users)
                    $0.field("store", store)
                    $0.field("receiver_processes", fleet.children.count)
                    $0.field("pusher_processes", senders)
                    $0.field("http_connections", httpConnections)
                    $0.field("depth", depth)
                    $0.field("batch", batch)
                    $0.field("duration_seconds", duration, decimals: 1)
                    $0.field("payload_bytes", payloadBytes)
                }
                $0.field("connect_seconds", connect.seconds, decimals: 3)
                $0.field("connect_failed", connect.failed)
                $0.key("phases")
                $0.array { writer in
                    for phase in phases {
                        writer.object {
                            $0.field("target_rate", phase.rate, decimals: 0)
                            $0.field("pushes", phase.pushers.pushes)
                            $0.field("pushes_ok", phase.pushers.okPushes)
                            $0.field("pushes_per_second", phase.pushers.pushRate, decimals: 0)
                            $0.field("push_errors", phase.pushers.pushErrors)
                            $0.key("http_statuses")
                            phase.pushers.statuses.write(into: &$0)
                            $0.key("connection_errors")
                            phase.pushers.connectionErrors.write(into: &$0)
                            $0.field("deliveries_expected", phase.pushers.onlineSum)
                            $0.field("deliveries", phase.receivers.delivered)
                            $0.field("deliveries_per_second", phase.deliveryRate, decimals: 0)
                            $0.field("latency", phase.receivers.latency)
                            $0.field("http_latency", phase.pushers.httpLatency)
                            $0.field("gaps", phase.receivers.gaps)
                            $0.field("duplicates", phase.receivers.duplicates)
                            $0.field("unexpected_closes", phase.receivers.unexpectedCloses)
                            $0.key("cpu")
                            Usage.write(phase.usage.0, phase.usage.1, into: &$0)
                        }
                    }
                }
            }
        } catch {
            note("\(error)")
        }
    }
}
