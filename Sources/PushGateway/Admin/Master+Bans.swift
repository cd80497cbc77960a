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
        askRedisWorker(name, arguments) { client.reply($0) }
    }
}
