import Glibc
import PushCore
import PushPosix

/// What the receivers reported when all of them were connected (or had given up).
struct ConnectSummary {
    var requested = 0
    var online = 0
    var failed = 0
    var failures: [String: Int] = [:]
    /// Handshakes tried again after a DISCONNECT that said to reconnect, and those DISCONNECT reasons.
    var retries = 0
    var retryReasons: [String: Int] = [:]
    /// From the connect command to the last AUTH_REPLY.
    var seconds = 0.0
    /// Per connection: connect() to AUTH_REPLY.
    var latency = Latency()

    var rate: Double { seconds > 0 ? Double(online) / seconds : 0 }
}

/// The receivers' merged `result` of one measuring phase.
struct ReceiverSummary {
    var online = 0
    var failed = 0
    var unexpectedCloses = 0
    var closeReasons: [String: Int] = [:]
    var heartbeatsSent = 0
    var heartbeatReplies = 0
    var acksSent = 0
    var delivered = 0
    var firstDelivery: UInt64 = 0
    var lastDelivery: UInt64 = 0
    var gaps = 0
    var duplicates = 0
    var complete = 0
    var backlog = 0
    var lastCompletion: UInt64 = 0
    var latency = Latency()
    var completion = Latency()
    var fanCount: [Int] = []
    var fanFirst: [UInt64] = []
    var fanLast: [UInt64] = []
}

/// The receiver processes of a scenario: spawning, connecting all, progress, reports.
final class Fleet {
    let group: ChildGroup
    let count: Int
    let children: [ChildProcess]
    let sourceCount: Int
    private var progress: [JSONValue?]
    /// How many `report`s ended a phase: progress reports of older phases are ignored.
    private var phase = 0
    private(set) var t0: UInt64 = 0

    /// Spawns receivers for users `0..<count` split evenly; `extra` are more `child receivers` options.
    init(
        group: ChildGroup, target: TargetOptions, client: ClientOptions, count: Int, lifetime: Double,
        inFlight defaultInFlight: Int = 2000, extra: [String] = []
    ) throws {
        self.group = group
        self.count = count
        let processes = client.processCount(for: count)
        let sources = try client.sourceAddresses(for: count)
        sourceCount = sources.count
        let rate = client.connectRate / Double(processes)
        var children: [ChildProcess] = []
        for index in 0..<processes {
            let first = index * count / processes
            let last = (index + 1) * count / processes
            let arguments =
                [
                    "child", "receivers", "--host", target.host, "--port", String(target.tcpPort),
                    "--first", String(first), "--count", String(last - first), "--user-prefix", client.userPrefix,
                    "--sources", sources.joined(separator: ","),
                    "--in-flight", String(max(1, (client.inFlight ?? defaultInFlight) / processes)),
                    "--rate", String(rate), "--heartbeat", String(client.heartbeat),
                    "--connect-timeout", String(client.connectTimeout(for: count)), "--lifetime", String(Int(lifetime)),
                ] + extra
            children.append(try group.spawn("receivers \(index)", arguments))
        }
        self.children = children
        progress = Array(repeating: nil, count: processes)
        _ = try group.await("started", from: children, seconds: 30)
    }

    /// Tells every receiver to start connecting now (one shared start time).
    func startConnecting() {
        t0 = Posix.monotonicNanos()
        for child in children { child.send("connect \(t0)") }
    }

    /// Connects every receiver and waits until each connection is authenticated or failed.
    func connectAll(timeout: Double, label: String = "connect") throws -> ConnectSummary {
        startConnecting()
        let readies = try group.await("ready", from: children, seconds: timeout + 30) { [self] in
            let totals = self.totals()
            note(
                "\(label): \(Format.count(totals.online))/\(Format.count(count)) online, "
                    + "\(Format.count(totals.failed)) failed, \(Format.seconds(Double(Posix.monotonicNanos() &- t0) / 1e9))")
        }
        return summarize(readies)
    }

    /// Merges the receivers' `ready` reports.
    func summarize(_ readies: [JSONValue]) -> ConnectSummary {
        var summary = ConnectSummary(requested: count)
        var lastAuth: UInt64 = t0
        for ready in readies {
            summary.online += ready["online"]?.int ?? 0
            summary.failed += ready["failed"]?.int ?? 0
            for (reason, value) in ready["failures"]?.objectMembers ?? [] {
                summary.failures[reason, default: 0] += value.int ?? 0
            }
            summary.retries += ready["retries"]?.int ?? 0
            for (reason, value) in ready["retry_reasons"]?.objectMembers ?? [] {
                summary.retryReasons[reason, default: 0] += value.int ?? 0
            }
            lastAuth = max(lastAuth, ready["last_auth_ns"]?.uint64 ?? 0)
            summary.latency.add(Latency(decoding: ready["connect"]))
        }
        summary.seconds = Double(lastAuth &- t0) / 1e9
        return summary
    }

    /// The sums of the receivers' newest progress reports (reads what arrived first).
    func totals() -> (online: Int, failed: Int, delivered: Int, complete: Int, closes: Int) {
        group.poll(0)
        for (index, child) in children.enumerated() {
            if let latest = child.takeLatest("progress"), latest["phase"]?.int == phase { progress[index] = latest }
        }
        var result = (online: 0, failed: 0, delivered: 0, complete: 0, closes: 0)
        for report in progress.compactMap({ $0 }) {
            result.online += report["online"]?.int ?? 0
            result.failed += report["failed"]?.int ?? 0
            result.delivered += report["delivered"]?.int ?? 0
            result.complete += report["complete"]?.int ?? 0
            result.closes += report["unexpected_closes"]?.int ?? 0
        }
        return result
    }

    /// Waits until the receivers got `expected` deliveries, or they stop coming for `stall` seconds, or
    /// `timeout` seconds pass.
    func awaitDeliveries(_ expected: Int, stall: Double, timeout: Double) {
        let deadline = Posix.monotonicNanos() &+ UInt64(timeout * 1e9)
        var last = -1
        var lastChange = Posix.monotonicNanos()
        while Posix.monotonicNanos() < deadline {
            // Progress reports come every 250 ms: wait for fresh ones.
            group.poll(0.3)
            let delivered = totals().delivered
            if delivered >= expected { return }
            if delivered != last {
                last = delivered
                lastChange = Posix.monotonicNanos()
            } else if Double(Posix.monotonicNanos() &- lastChange) / 1e9 > stall {
                return
            }
        }
    }

    /// Ends the current measuring phase: every receiver reports and starts counting afresh.
    func report(timeout: Double = 30) throws -> ReceiverSummary {
        for child in children { child.send("report") }
        let results = try group.await("result", from: children, seconds: timeout)
        phase += 1
        progress = Array(repeating: nil, count: children.count)
        var summary = ReceiverSummary()
        for result in results {
            summary.online += result["online"]?.int ?? 0
            summary.failed += result["failed"]?.int ?? 0
            summary.unexpectedCloses += result["unexpected_closes"]?.int ?? 0
            for (reason, value) in result["close_reasons"]?.objectMembers ?? [] {
                summary.closeReasons[reason, default: 0] += value.int ?? 0
            }
            summary.heartbeatsSent += result["heartbeats_sent"]?.int ?? 0
            summary.heartbeatReplies += result["heartbeat_replies"]?.int ?? 0
            summary.acksSent += result["acks_sent"]?.int ?? 0
            summary.delivered += result["delivered"]?.int ?? 0
            if let first = result["first_delivery_ns"]?.uint64, first > 0 {
                summary.firstDelivery = summary.firstDelivery == 0 ? first : min(summary.firstDelivery, first)
            }
            summary.lastDelivery = max(summary.lastDelivery, result["last_delivery_ns"]?.uint64 ?? 0)
            summary.gaps += result["gaps"]?.int ?? 0
            summary.duplicates += result["duplicates"]?.int ?? 0
            summary.complete += result["complete"]?.int ?? 0
            summary.backlog += result["backlog"]?.int ?? 0
            summary.lastCompletion = max(summary.lastCompletion, result["last_completion_ns"]?.uint64 ?? 0)
            summary.latency.add(Latency(decoding: result["latency"]))
            summary.completion.add(Latency(decoding: result["completion"]))
            let counts = (result["fan_count"]?.arrayValue ?? []).map { $0.int ?? 0 }
            let firsts = (result["fan_first_ns"]?.arrayValue ?? []).map { $0.uint64 ?? 0 }
            let lasts = (result["fan_last_ns"]?.arrayValue ?? []).map { $0.uint64 ?? 0 }
            if summary.fanCount.count < counts.count {
                summary.fanCount += Array(repeating: 0, count: counts.count - summary.fanCount.count)
                summary.fanFirst += Array(repeating: 0, count: counts.count - summary.fanFirst.count)
                summary.fanLast += Array(repeating: 0, count: counts.count - summary.fanLast.count)
            }
            for index in counts.indices {
                summary.fanCount[index] += counts[index]
                if counts[index] > 0 {
                    let first = firsts[index]
                    summary.fanFirst[index] = summary.fanFirst[index] == 0 ? first : min(summary.fanFirst[index], first)
                    summary.fanLast[index] = max(summary.fanLast[index], lasts[index])
                }
            }
        }
        return summary
    }
}

extension Dictionary where Key == String, Value == Int {
    /// "EADDRNOTAVAIL ×12, timeout ×3", largest first; "none" when empty.
    var reasonsLine: String {
        guard !isEmpty else { return "none" }
        return sorted { $0.value > $1.value }.map { "\($0.key) ×\(Format.count($0.value))" }.joined(separator: ", ")
    }

    func write(into writer: inout JSONWriter) {
        writer.object { writer in for (key, value) in self.sorted(by: { $0.key < $1.key }) { writer.field(key, value) }
        }
    }
}
