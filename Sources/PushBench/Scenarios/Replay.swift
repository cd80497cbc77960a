import ArgumentParser
import Glibc
import PushCore
import PushPosix

/// `replay`: stores M messages for each of U offline users, then connects all of them at once with
/// `last_seq: 0` and measures the time until every backlog has arrived, in order.
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store M messages for U offline users, connect all with last_seq 0, time until every backlog is in.")

    @OptionGroup var target: TargetOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var report: ReportOptions

    @Option(help: "Offline users, then one connection each.")
    var users = 10_000
    @Option(help: "Stored messages per user (at most inbox.max, 200 by default).")
    var messages = 50
    @Option(help: "Users per stored push while filling (to.users; at most 1000).")
    var usersPerPush = 100
    @Option(help: "Pusher processes while filling.")
    var senders = 1
    @Option(help: "HTTP connections over all pushers.")
    var httpConnections = 8
    /// depth × users-per-push × http-connections store scripts are in flight at the gateway, which refuses more
    /// than 10,000 Redis commands in flight with 503.
    @Option(help: "Requests pipelined per HTTP connection (keep depth × users-per-push × connections under 10,000).")
    var depth = 4
    @Option(help: "Seconds allowed for the fill, and again for the replay.")
    var timeout = 300.0

    func validate() throws {
        guard users >= 1, messages >= 1 else { throw ValidationError("--users and --messages must be at least 1") }
        guard usersPerPush >= 1, usersPerPush <= 1000 else {
            throw ValidationError("--users-per-push must be 1…1000")
        }
        guard senders >= 1, httpConnections >= senders, depth >= 1 else {
            throw ValidationError("--senders ≥ 1, --http-connections ≥ --senders, --depth ≥ 1")
        }
    }

    func run() throws {
        let load = ProcessTree.loadAverage()
        let group = ChildGroup()
        defer { group.stopAll() }
        if messages > 200 { note("warning: --messages \(messages) is over the default inbox.max of 200") }

        // Fill: pusher i stores every message for its share of the users.
        note("fill: \(Format.count(messages)) messages for each of \(Format.count(users)) users")
        let fillers = try Senders(group: group, count: senders) { index in
            let first = index * users / senders
            let last = (index + 1) * users / senders
            return [
                "--host", target.host, "--port", String(target.httpPort), "--mode", "fill", "--store",
                "--connections", String((index + 1) * httpConnections / senders - index * httpConnections / senders),
                "--depth", String(depth), "--duration", String(timeout), "--first", String(first),
                "--users", String(last - first), "--user-prefix", client.userPrefix, "--messages", String(messages),
                "--users-per-push", String(usersPerPush), "--lifetime", String(Int(timeout + 120)),
            ]
        }
        let fillStart = Usage.sample(report, group)
        let fill = try fillers.run(timeout: timeout + 30) {
            note("fill: \(Format.count(fillers.totals().ok)) pushes stored")
        }
        let fillEnd = Usage.sample(report, group)
        let stored = fill.okRecipients
        let fillRate = fill.seconds > 0 ? Double(stored) / fill.seconds : 0
        note("fill: \(Format.count(stored)) messages stored in \(Format.seconds(fill.seconds))")

        // Replay: everyone connects at once and gets its backlog after AUTH_REPLY.
        let fleet = try Fleet(
            group: group, target: target, client: client, count: users,
            lifetime: client.connectTimeout(for: users) + timeout + 300,
            inFlight: users, extra: ["--last-seq", "0", "--replay"])
        let replayStart = Usage.sample(report, group)
        fleet.startConnecting()
        let deadline = Posix.monotonicNanos() &+ UInt64(timeout * 1e9)
        var lastNote = Posix.monotonicNanos()
        var readies = [JSONValue?](repeating: nil, count: fleet.children.count)
        var lastComplete = -1
        var lastChange = Posix.monotonicNanos()
        while Posix.monotonicNanos() < deadline {
            group.poll(0.3)
            for (index, child) in fleet.children.enumerated() where readies[index] == nil {
                readies[index] = child.take("ready")
            }
            let totals = fleet.totals()
            if totals.complete >= users { break }
            if totals.complete != lastComplete {
                lastComplete = totals.complete
                lastChange = Posix.monotonicNanos()
            } else if !readies.contains(where: { $0 == nil }) && Double(Posix.monotonicNanos() &- lastChange) / 1e9 > 5 {
                note("replay: no progress for 5 s, giving up")
                break
            }
            if Posix.monotonicNanos() &- lastNote > 1_000_000_000 {
                lastNote = Posix.monotonicNanos()
                note(
                    "replay: \(Format.count(totals.online)) online, \(Format.count(totals.complete)) complete, "
                        + "\(Format.count(totals.delivered)) messages")
            }
        }
        let replayEnd = Usage.sample(report, group)
        // Connections that never authenticated are still reported as failed once the connect timeout passes.
        let missing = fleet.children.indices.filter { readies[$0] == nil }
        if !missing.isEmpty, let late = try? group.await("ready", from: missing.map { fleet.children[$0] }, seconds: 5)
        {
            for (index, ready) in zip(missing, late) { readies[index] = ready }
        }
        let connect = fleet.summarize(readies.compactMap { $0 })
        let receivers = try fleet.report()
        group.stopAll()

        let replaySeconds = receivers.lastCompletion > fleet.t0 ? Double(receivers.lastCompletion &- fleet.t0) / 1e9 : 0
        let replayed = receivers.delivered
        var table = Table(
            "replay: \(Format.count(users)) offline users × \(messages) stored messages, then all connect with "
                + "last_seq 0 (\(Format.plural(fleet.children.count, "receiver process")))")
        table.add(
            "fill: messages stored (answered 200)",
            "\(Format.count(stored)) in \(Format.seconds(fill.seconds)) (\(Format.rate(fillRate)))")
        table.add(
            "fill: pushes (\(usersPerPush) users each)", "\(Format.count(fill.okPushes)), errors: \(fill.errorsLine)")
        table.add(
            "fill: HTTP response p50 / p99",
            "\(Format.ms(fill.httpLatency.millis(50))) / \(Format.ms(fill.httpLatency.millis(99))) ms")
        table.add("fill: CPU", Usage.line(fillStart, fillEnd, report))
        table.add(
            "connect + AUTH, all",
            "\(Format.count(connect.online)) of \(Format.count(users)) in \(Format.seconds(connect.seconds)); "
                + "failed: \(connect.failures.reasonsLine)"
        )
        let retried = "\(Format.count(connect.retries)): \(connect.retryReasons.reasonsLine)"
        table.add("handshakes retried (DISCONNECT reconnect)", retried)
        table.add(
            "every backlog received",
            receivers.complete >= users
                ? "\(Format.seconds(replaySeconds)) after the first connect"
                : "NO: \(Format.count(receivers.complete)) of \(Format.count(users)) complete")
        table.add("backlog (sum of AUTH_REPLY last_seq)", Format.count(receivers.backlog))
        table.add(
            "messages replayed",
            "\(Format.count(replayed)) (\(Format.rate(replaySeconds > 0 ? Double(replayed) / replaySeconds : 0)))")
        table.add("start → a connection has all its backlog", receivers.completion.line)
        table.add("seq gaps / duplicates", "\(receivers.gaps) / \(receivers.duplicates)")
        table.add("replay: CPU", Usage.line(replayStart, replayEnd, report))
        table.add("machine load average at start (1 min)", Format.fixed(load, 2))
        table.print()

        try writeResults(report.json, scenario: "replay", startLoad: load) {
            $0.key("parameters")
            $0.object {
                $0.field("users", users)
                $0.field("messages_per_user", messages)
                $0.field("users_per_push", usersPerPush)
                $0.field("receiver_processes", fleet.children.count)
                $0.field("http_connections", httpConnections)
                $0.field("depth", depth)
            }
            $0.key("results")
            $0.object {
                $0.field("stored", stored)
                $0.field("fill_seconds", fill.seconds, decimals: 3)
                $0.field("stored_per_second", fillRate, decimals: 0)
                $0.field("fill_push_errors", fill.pushErrors)
                $0.field("fill_http_latency", fill.httpLatency)
                $0.key("fill_cpu")
                Usage.write(fillStart, fillEnd, into: &$0)
                $0.field("online", connect.online)
                $0.field("connect_failed", connect.failed)
                $0.field("connect_retries", connect.retries)
                $0.field("connect_seconds", connect.seconds, decimals: 3)
                $0.field("complete", receivers.complete)
                $0.field("replay_seconds", replaySeconds, decimals: 3)
                $0.field("backlog", receivers.backlog)
                $0.field("replayed", replayed)
                $0.field("replayed_per_second", replaySeconds > 0 ? Double(replayed) / replaySeconds : 0, decimals: 0)
                $0.field("completion", receivers.completion)
                $0.field("gaps", receivers.gaps)
                $0.field("duplicates", receivers.duplicates)
                $0.key("replay_cpu")
                Usage.write(replayStart, replayEnd, into: &$0)
            }
        }
    }
}
