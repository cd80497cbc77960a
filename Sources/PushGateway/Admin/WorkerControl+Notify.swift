import PushCore
import PushPosix

/// `pushgw ctl notify`, as one worker runs it for the master: the notifiers' queue figures, then the newest dead
/// letters (`pg:notify:dead`, newest first), one line each.
extension WorkerControl {
    func deadLetters(count: Int, reply: @escaping ([String]) -> Void) {
        let redis = parts.store.scripts.redis
        NotifyFigures.fetch(redis) { figures in
            let key = Array(RedisKeys.notifyDeadLetters.utf8)
            let command = ["XREVRANGE", RedisKeys.notifyDeadLetters, "+", "-", "COUNT", String(count)]
            redis.send(command.map { Array($0.utf8) }, key: key) { result in
                guard case .success(.array(let entries)) = result else {
                    return reply(["ERR Redis: \(result)"])
                }
                let now = Posix.wallMillis()
                let lines = entries.compactMap { Self.deadLetterLine($0, now: now) }
                reply(
                    figures.statsLines.filter { !$0.hasPrefix("notifications.") }
                        + lines + ["shown \(lines.count) of \(figures.deadLetters)"])
            }
        }
    }

    /// `dead <id> age_s=… user=… device=… provider=… seq=… badge=… reason=…` (values escaped as in `conns`).
    private static func deadLetterLine(_ entry: RedisValue, now: UInt64) -> String? {
        guard case .array(let pair) = entry, pair.count == 2, case .string(let idBytes) = pair[0],
            case .array(let list) = pair[1]
        else { return nil }
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: list.count - 1, by: 2) {
            if case .string(let name) = list[index], case .string(let value) = list[index + 1] {
                fields[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
            }
        }
        let id = String(decoding: idBytes, as: UTF8.self)
        let millis = UInt64(id.prefix { $0 != "-" }) ?? now
        var line = "dead \(id) age_s=\(now >= millis ? (now - millis) / 1000 : 0)"
        let shown: [(String, String)] = [
            ("u", "user"), ("d", "device"), ("p", "provider"), ("s", "seq"), ("b", "badge"), ("reason", "reason"),
        ]
        for (field, name) in shown {
            line += " \(name)=\(AdminText.escape(fields[field] ?? "-"))"
        }
        return line
    }
}
