import Glibc
import PushCore

/// The pushers' merged `result`.
struct PusherSummary {
    var started: UInt64 = 0
    var finished: UInt64 = 0
    var connections = 0
    var requests = 0
    var responses = 0
    var pushes = 0
    var okPushes = 0
    var okRecipients = 0
    var pushErrors = 0
    var lostPushes = 0
    var onlineSum = 0
    var statuses: [String: Int] = [:]
    var connectionErrors: [String: Int] = [:]
    var httpLatency = Latency()
    var broadcastDelivered: [Int] = []
    var broadcastReplyNanos: [UInt64] = []

    var seconds: Double { Double(finished &- started) / 1e9 }
    var pushRate: Double { seconds > 0 ? Double(okPushes) / seconds : 0 }

    /// "0" or "503 ×12, ECONNRESET ×1".
    var errorsLine: String {
        var all = statuses.reduce(into: [String: Int]()) { $0["HTTP \($1.key)"] = $1.value }
        all.merge(connectionErrors, uniquingKeysWith: +)
        if lostPushes > 0 { all["pushes lost with their connection"] = lostPushes }
        let batchErrors = pushErrors - statuses.values.reduce(0, +)
        if batchErrors > 0 { all["failed items of batches"] = batchErrors }
        return all.isEmpty ? "0" : all.reasonsLine
    }
}

/// The pusher processes of one phase: spawned, started together, run to their end, merged, stopped.
final class Senders {
    private let group: ChildGroup
    let children: [ChildProcess]

    /// Spawns `count` pushers; `arguments(i)` are the `child pusher` options of pusher i.
    init(group: ChildGroup, count: Int, arguments: (Int) -> [String]) throws {
        self.group = group
        var children: [ChildProcess] = []
        for index in 0..<count {
            children.append(try group.spawn("pusher \(index)", ["child", "pusher"] + arguments(index)))
        }
        self.children = children
        _ = try group.await("started", from: children, seconds: 30)
    }

    /// Starts every pusher and waits for all their results (at most `timeout` seconds), then stops them.
    func run(timeout: Double, progress: (() -> Void)? = nil) throws -> PusherSummary {
        for child in children { child.send("go") }
        let results = try group.await("result", from: children, seconds: timeout, progress: progress)
        group.stop(children)
        var summary = PusherSummary()
        for (child, result) in zip(children, results) {
            let started = result["started_ns"]?.uint64 ?? 0
            summary.started = summary.started == 0 ? started : min(summary.started, started)
            summary.finished = max(summary.finished, result["finished_ns"]?.uint64 ?? 0)
            summary.connections += result["connections"]?.int ?? 0
            summary.requests += result["requests"]?.int ?? 0
            summary.responses += result["responses"]?.int ?? 0
            summary.pushes += result["pushes"]?.int ?? 0
            summary.okPushes += result["ok_pushes"]?.int ?? 0
            summary.okRecipients += result["ok_recipients"]?.int ?? 0
            summary.pushErrors += result["push_errors"]?.int ?? 0
            summary.lostPushes += result["lost_pushes"]?.int ?? 0
            summary.onlineSum += result["online_sum"]?.int ?? 0
            for (status, value) in result["statuses"]?.objectMembers ?? [] {
                summary.statuses[status, default: 0] += value.int ?? 0
            }
            for (status, sample) in result["error_samples"]?.objectMembers ?? [] {
                note("\(child.name): first HTTP \(status) answer: \(sample.stringValue ?? "?")")
            }
            for (reason, value) in result["connection_errors"]?.objectMembers ?? [] {
                summary.connectionErrors[reason, default: 0] += value.int ?? 0
            }
            summary.httpLatency.add(Latency(decoding: result["http_latency"]))
            let delivered = (result["broadcast_delivered"]?.arrayValue ?? []).map { $0.int ?? -1 }
            if !delivered.isEmpty { summary.broadcastDelivered = delivered }
            let replies = (result["broadcast_reply_ns"]?.arrayValue ?? []).map { $0.uint64 ?? 0 }
            if !replies.isEmpty { summary.broadcastReplyNanos = replies }
        }
        return summary
    }

    /// Progress of the pushers: pushes sent and answered 2xx so far.
    func totals() -> (sent: Int, ok: Int) {
        var sent = 0
        var ok = 0
        for child in children {
            if let latest = child.inbox.last(where: { $0["type"]?.stringValue == "progress" }) {
                sent += latest["sent"]?.int ?? 0
                ok += latest["ok"]?.int ?? 0
            }
        }
        return (sent, ok)
    }
}
