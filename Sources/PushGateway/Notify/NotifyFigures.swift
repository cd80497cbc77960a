import PushCore
import PushPosix

/// The notifiers' figures as Redis holds them (SPEC §10), for `/metrics` and `pushgw ctl stats`: every notifier's
/// counters (`pg:notify:stats`), the queue's depth (entries no notifier read yet: the group's `lag`), the entries
/// read and not settled (`pending`) with the age of the oldest, and the dead letters' count. On a cluster the
/// figures of every notification stream found on the masters (`SCAN`) are added up.
struct NotifyFigures: Equatable {
    struct Counter: Equatable {
        let provider: String
        let result: String
        let count: Int
    }

    var counters: [Counter] = []
    var lag = 0
    var pending = 0
    var oldestPendingSeconds = 0.0
    var deadLetters = 0
    /// Notification streams found (1 on one server, once a notification was queued).
    var streams = 0

    /// Reads the figures; answers with what could be read (a failed command leaves its figure at 0).
    static func fetch(_ redis: RedisCommands, _ done: @escaping (NotifyFigures) -> Void) {
        var figures = NotifyFigures()
        let stats = Array(RedisKeys.notifyStats.utf8)
        redis.send([Array("HGETALL".utf8), stats], key: stats) { reply in
            figures.counters = counters(reply)
            let dead = Array(RedisKeys.notifyDeadLetters.utf8)
            redis.send([Array("XLEN".utf8), dead], key: dead) { reply in
                if case .success(.integer(let n)) = reply { figures.deadLetters = Int(n) }
                streamNames(redis) { names in
                    add(names[...], to: figures, redis, done)
                }
            }
        }
    }

    /// `pg:notify` on one server; on a cluster the `pg:notify:{<tag>}` streams of every master.
    private static func streamNames(_ redis: RedisCommands, _ done: @escaping ([String]) -> Void) {
        guard case .cluster = redis else { return done([RedisKeys.notifyStream]) }
        var names: [String] = []
        let masters = redis.connections.filter(\.isReady)
        guard !masters.isEmpty else { return done([]) }
        var remaining = masters.count
        for master in masters {
            scan(master, cursor: "0") { found in
                names += found
                remaining -= 1
                if remaining == 0 { done(names) }
            }
        }
    }

    private static func scan(_ client: RedisClient, cursor: String, found: [String] = [], _ done: @escaping ([String]) -> Void) {
        let command = ["SCAN", cursor, "MATCH", RedisKeys.notifyStreamPattern, "TYPE", "stream", "COUNT", "1000"]
        client.send(command.map { Array($0.utf8) }) { reply in
            guard case .success(.array(let parts)) = reply, parts.count == 2, case .string(let next) = parts[0],
                case .array(let keys) = parts[1]
            else { return done(found) }
            let more = found + keys.compactMap { if case .string(let key) = $0 { String(decoding: key, as: UTF8.self) } else { nil } }
            let nextCursor = String(decoding: next, as: UTF8.self)
            if nextCursor == "0" { return done(more) }
            scan(client, cursor: nextCursor, found: more, done)
        }
    }

    /// Adds the group figures of each stream, one stream after the other.
    private static func add(
        _ names: ArraySlice<String>, to figures: NotifyFigures, _ redis: RedisCommands,
        _ done: @escaping (NotifyFigures) -> Void
    ) {
        guard let name = names.first else { return done(figures) }
        let key = Array(name.utf8)
        redis.send([Array("XINFO".utf8), Array("GROUPS".utf8), key], key: key) { groups in
            redis.send([Array("XPENDING".utf8), key, Array(NotifyQueue.group.utf8)], key: key) { pending in
                var figures = figures
                if let group = group(groups) {
                    figures.streams += 1
                    figures.lag += group.lag
                    figures.pending += group.pending
                    figures.oldestPendingSeconds = max(figures.oldestPendingSeconds, NotifyQueue.oldestPendingAge(pending))
                }
                add(names.dropFirst(), to: figures, redis, done)
            }
        }
    }

    private static func counters(_ reply: Result<RedisValue, RedisError>) -> [Counter] {
        guard case .success(.array(let fields)) = reply else { return [] }
        var counters: [Counter] = []
        for index in stride(from: 0, to: fields.count - 1, by: 2) {
            guard case .string(let name) = fields[index], case .string(let value) = fields[index + 1],
                let count = Int(String(decoding: value, as: UTF8.self))
            else { continue }
            let parts = String(decoding: name, as: UTF8.self).split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            counters.append(Counter(provider: String(parts[0]), result: String(parts[1]), count: count))
        }
        return counters.sorted { ($0.provider, $0.result) < ($1.provider, $1.result) }
    }

    /// Our group's `lag` and `pending` in `XINFO GROUPS`' reply (nil when the stream or the group is not there).
    private static func group(_ reply: Result<RedisValue, RedisError>) -> (lag: Int, pending: Int)? {
        guard case .success(.array(let list)) = reply else { return nil }
        for group in list {
            guard case .array(let fields) = group else { continue }
            var values: [String: RedisValue] = [:]
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                if case .string(let name) = fields[index] { values[String(decoding: name, as: UTF8.self)] = fields[index + 1] }
            }
            guard values["name"] == .string(Array(NotifyQueue.group.utf8)) else { continue }
            let lag = if case .integer(let n) = values["lag"] { Int(n) } else { 0 }
            let pending = if case .integer(let n) = values["pending"] { Int(n) } else { 0 }
            return (lag, pending)
        }
        return nil
    }

    /// The Prometheus text appended to `/metrics`.
    var prometheusText: String {
        var lines = "# HELP pushgw_notifications_total Notification attempts settled by the notifiers.\n"
            + "# TYPE pushgw_notifications_total counter\n"
        for counter in counters {
            lines += "pushgw_notifications_total{provider=\"\(counter.provider)\",result=\"\(counter.result)\"} \(counter.count)\n"
        }
        return lines
            + "# HELP pushgw_notify_queue_lag Notifications queued and not yet read by a notifier.\n"
            + "# TYPE pushgw_notify_queue_lag gauge\npushgw_notify_queue_lag \(lag)\n"
            + "# HELP pushgw_notify_pending Notifications read by a notifier and not yet settled.\n"
            + "# TYPE pushgw_notify_pending gauge\npushgw_notify_pending \(pending)\n"
            + "# HELP pushgw_notify_oldest_pending_seconds Age of the oldest notification not yet settled.\n"
            + "# TYPE pushgw_notify_oldest_pending_seconds gauge\n"
            + "pushgw_notify_oldest_pending_seconds \(oldestPendingSeconds)\n"
            + "# HELP pushgw_notify_dead_letters Notifications given up, kept in pg:notify:dead.\n"
            + "# TYPE pushgw_notify_dead_letters gauge\npushgw_notify_dead_letters \(deadLetters)\n"
    }

    /// `name value` lines for `ctl stats` (StatsTable lays them out).
    var statsLines: [String] {
        [
            "notify_queue_lag \(lag)", "notify_pending \(pending)",
            "notify_oldest_pending_s \(Figures.decimal(oldestPendingSeconds, 1))", "notify_dead_letters \(deadLetters)",
            "notify_streams \(streams)",
        ] + counters.map { "notifications.\($0.provider).\($0.result) \($0.count)" }
    }
}
