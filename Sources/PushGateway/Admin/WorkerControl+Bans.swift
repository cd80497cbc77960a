import PushCore

/// The admin socket's ban commands, as one worker runs them for the master: each reads or writes Redis through
/// the worker's `EdgeState`, exactly as `GET`/`POST /v1/bans` and `DELETE /v1/bans/{id}` do, and every node applies
/// the change within a second.
extension WorkerControl {
    /// `bans` (no argument), `ban <POST /v1/bans body>`, `unban <id>`.
    func runBanCommand(_ name: String, _ arguments: [String], reply: @escaping ([String]) -> Void) {
        guard edge.scripts.isAvailable else { return reply(["ERR Redis is not available: bans live there"]) }
        switch name {
        case "bans":
            edge.listBans { result in
                switch result {
                case .success(let bans):
                    let now = EdgeState.now()
                    reply(bans.map { Self.line($0, now: now) } + ["total \(bans.count)"])
                case .failure(let failure):
                    reply(["ERR Redis: \(failure)"])
                }
            }
        case "ban":
            let request: BanRequest
            do {
                request = try BanRequest(body: Array(arguments[0].utf8))
            } catch {
                return reply(["ERR \(error.message)"])
            }
            edge.addBan(request) { result in
                switch result {
                case .success(let ban):
                    reply(["OK ban \(AdminText.escape(ban.id)) \(Self.expiry(ban, now: EdgeState.now()))"])
                case .failure(let failure):
                    reply(["ERR Redis: \(failure)"])
                }
            }
        default:
            let id = arguments[0]
            edge.removeBan(id) { result in
                switch result {
                case .success(true): reply(["OK unbanned \(AdminText.escape(id))"])
                case .success(false): reply(["ERR no ban with id \(AdminText.escape(id))"])
                case .failure(let failure): reply(["ERR Redis: \(failure)"])
                }
            }
        }
    }

    /// `ban <id> ip=… user=… device=… expires_in_s=…|never reason=…`, every value escaped (`-` when not set).
    static func line(_ ban: Ban, now: Int) -> String {
        "ban \(AdminText.escape(ban.id)) ip=\(AdminText.escape(ban.ip?.description ?? "")) "
            + "user=\(AdminText.escape(ban.user ?? "")) device=\(AdminText.escape(ban.device ?? "")) "
            + "\(expiry(ban, now: now)) reason=\(AdminText.escape(ban.reason))"
    }

    /// `expires_in_s=<n>`, or `expires_in_s=never`.
    static func expiry(_ ban: Ban, now: Int) -> String {
        "expires_in_s=\(ban.expiresAt == 0 ? "never" : String(max(0, ban.expiresAt - now)))"
    }
}
