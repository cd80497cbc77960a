import PushCore

/// `bans`, `ban …`, `unban <id>` on the admin socket (SPEC §8): one worker whose Redis is up runs the command
/// against Redis, as the HTTP API would; every node, this gateway's other workers included, applies the change
/// within a second.
extension Master {
    func banCommand(_ command: AdminCommand, _ client: AdminConnection) {
        let (name, arguments): (String, [String])
        switch command {
        case .bans: (name, arguments) = ("bans", [])
        case .ban(let request): (name, arguments) = ("ban", [String(decoding: request.json, as: UTF8.self)])
        case .unban(let id): (name, arguments) = ("unban", [id])
        default: return client.reply(["ERR not a ban command"])
        }
        let asked = currentWorkers.first { metrics.workers[Int($0)]?.snapshot.redisUp == true } ?? currentWorkers.first
        guard let asked else { return client.reply(["ERR no worker is running"]) }
        ask([asked], name, arguments) { replies in
            client.reply(replies.values.first ?? ["ERR the worker did not answer within \(Self.replyTimeout) s"])
        }
    }
}
