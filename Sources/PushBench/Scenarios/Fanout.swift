import ArgumentParser
import Glibc
import PushCore

/// `fanout`: N connections; K broadcasts (`{"to":{"all":true}}`) one after the other; for each, the time from the
/// POST to the first and to the last receiver.
struct Fanout: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Broadcast K messages to N connections; time from POST to the last receiver.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var report: ReportOptions

    @Option(help: "Connections, one user each.")
    var connections = 10_000
    @Option(help: "Broadcasts.")
    var messages = 10
    @Option(help: "Seconds from one broadcast to the next (each waits for the previous answer too).")
    var interval = 1.0
    @Option(help: "Extra payload bytes.")
    var payloadBytes = 0

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard messages >= 1, messages <= 1000 else { throw ValidationError("--messages must be 1…1000") }
        guard interval >= 0, interval <= 60 else { throw ValidationError("--interval must be 0…60 seconds") }
    }

    func run() throws {
        let load = ProcessTree.loadAverage()
        let group = ChildGroup()
        defer { group.stopAll() }
        let sending = Double(messages) * interval + 30
        let fleet = try Fleet(
            group: group, target: target, client: client, count: connections,
            lifetime: client.connectTimeout(for: connections) + sending + 300, extra: ["--messages", String(messages)])
        let connect = try fleet.connectAll(timeout: client.connectTimeout(for: connections))
        note("connect: \(Format.count(connect.online)) online in \(Format.seconds(connect.seconds))")
        _ = try fleet.report()

        let senders = try Senders(group: group, count: 1) { _ in
            [
                "--host", target.host, "--port", String(target.httpPort), "--mode", "broadcast",
                "--connections", "1", "--depth", "1", "--duration", String(sending), "--users", "1",
                "--user-prefix", client.userPrefix, "--messages", String(messages), "--interval", String(interval),
                "--payload-bytes", String(payloadBytes), "--lifetime", String(Int(sending + 120)),
            ]
        }
        let before = Usage.sample(report, group)
        let pushers = try senders.run(timeout: sending + 30) {
            note("broadcasts: \(Format.count(fleet.totals().delivered)) delivered")
        }
        // Every connection gets every broadcast. (The HTTP answer's `delivered` counts only the connections of the
        // worker that took the request; other workers hear of it over Redis pub/sub.)
        fleet.awaitDeliveries(connect.online * messages, stall: 3, timeout: 60)
        let after = Usage.sample(report, group)
        let receivers = try fleet.report()
        group.stopAll()

        var table = Table(
            "fanout: \(messages) broadcasts to \(Format.count(connections)) connections "
                + "(\(Format.plural(fleet.children.count, "receiver process"))), \(Format.seconds(interval)) apart",
            header: ["#", "answer: delivered", "received", "first receiver", "last receiver", "HTTP answer"])
        var lasts = Latency()
        for index in 0..<messages {
            let delivered = index < pushers.broadcastDelivered.count ? pushers.broadcastDelivered[index] : -1
            let received = index < receivers.fanCount.count ? receivers.fanCount[index] : 0
            let first = index < receivers.fanFirst.count ? Double(receivers.fanFirst[index]) / 1e6 : 0
            let last = index < receivers.fanLast.count ? Double(receivers.fanLast[index]) / 1e6 : 0
            let reply = index < pushers.broadcastReplyNanos.count ? Double(pushers.broadcastReplyNanos[index]) / 1e6 : 0
            if received > 0 { lasts.record(nanos: UInt64(last * 1e6)) }
            table.add(
                String(index), delivered < 0 ? "no answer" : Format.count(delivered), Format.count(received),
                Format.ms(first) + " ms", Format.ms(last) + " ms", Format.ms(reply) + " ms")
        }
        table.print()
        var summary = Table("fanout summary")
        summary.add("connections online", Format.count(connect.online))
        summary.add(
            "time to last receiver, median / max", "\(Format.ms(lasts.millis(50))) / \(Format.ms(lasts.maxMillis)) ms")
        summary.add("all deliveries, push → receive", receivers.latency.line)
        summary.add(
            "deliveries received / expected",
            "\(Format.count(receivers.delivered)) / \(Format.count(connect.online * messages))")
        summary.add("push errors", pushers.errorsLine)
        summary.add("connections closed", "\(receivers.unexpectedCloses): \(receivers.closeReasons.reasonsLine)")
        summary.add("CPU", Usage.line(before, after, report))
        summary.add("machine load average at start (1 min)", Format.fixed(load, 2))
        summary.print()

        try writeResults(report.json, scenario: "fanout", startLoad: load) {
            $0.key("parameters")
            $0.object {
                $0.field("connections", connections)
                $0.field("messages", messages)
                $0.field("interval_seconds", interval, decimals: 3)
                $0.field("receiver_processes", fleet.children.count)
                $0.field("payload_bytes", payloadBytes)
            }
            $0.key("results")
            $0.object {
                $0.field("online", connect.online)
                $0.field("connect_seconds", connect.seconds, decimals: 3)
                $0.key("messages")
                $0.array { writer in
                    for index in 0..<messages {
                        writer.object {
                            $0.field(
                                "gateway_delivered",
                                index < pushers.broadcastDelivered.count ? pushers.broadcastDelivered[index] : -1)
                            $0.field("received", index < receivers.fanCount.count ? receivers.fanCount[index] : 0)
                            $0.field(
                                "first_ms",
                                index < receivers.fanFirst.count ? Double(receivers.fanFirst[index]) / 1e6 : 0,
                                decimals: 3)
                            $0.field(
                                "last_ms", index < receivers.fanLast.count ? Double(receivers.fanLast[index]) / 1e6 : 0,
                                decimals: 3)
                            $0.field(
                                "http_ms",
                                index < pushers.broadcastReplyNanos.count
                                    ? Double(pushers.broadcastReplyNanos[index]) / 1e6 : 0, decimals: 3)
                        }
                    }
                }
                $0.field("last_receiver", lasts)
                $0.field("latency", receivers.latency)
                $0.field("deliveries", receivers.delivered)
                $0.field("push_errors", pushers.pushErrors)
                $0.field("unexpected_closes", receivers.unexpectedCloses)
                $0.key("cpu")
                Usage.write(before, after, into: &$0)
            }
        }
    }
}
