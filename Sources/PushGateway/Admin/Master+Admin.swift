import Glibc
import Logging
import PushCore

/// The admin socket's commands, run by the master (SPEC §6). Figures come from the workers' latest snapshots (at
/// most a second old); `conns`, `kick`, `nodes`, `drain`, `log-level` and the ban commands are sent down the
/// workers' control pipes and answered when every worker asked has replied, or after `replyTimeout`.
extension Master {
    /// How long a command waits for the workers' replies.
    static let replyTimeout = 2.0

    func adminCommand(_ client: AdminConnection, _ line: String) {
        let command: AdminCommand
        switch AdminCommand.parse(line) {
        case .failure(let error): return client.reply(["ERR \(error.message)"])
        case .success(let parsed): command = parsed
        }
        switch command {
        case .stats:
            stats(client)
        case .notify(let count):
            askRedisWorker("notify-dead", [String(count)]) { client.reply($0) }
        case .tail:
            client.send(line: report().tailLine(time: Self.clockTime()))
            client.startTail()
        case .help:
            client.reply(AdminCommand.helpLines)
        case .conns(let user):
            conns(user, client)
        case .kick(let user, let key):
            ask(Array(links.keys), "kick", [user] + (key.map { [$0] } ?? [])) { replies in
                let kicked = replies.values.compactMap { Self.number(after: "kicked", in: $0) }.reduce(0, +)
                client.reply(["OK kicked \(kicked)"])
            }
        case .nodes:
            nodes(client)
        case .bans, .ban, .unban:
            banCommand(command, client)
        case .reload:
            if let refusal = reload() {
                client.reply(["ERR \(refusal)"])
            } else {
                client.reply([
                    "OK reloading: generation \(generation) starts \(config.server.workers) workers, the old ones drain"
                ])
            }
        case .drain:
            guard !stopping else { return client.reply(["ERR the gateway is stopping"]) }
            clientsDrained = true
            logger.notice("drain: clients are sent away; the HTTP API stays up until reload or stop")
            let workers = currentWorkers
            ask(workers, "drain", []) { [config] replies in
                client.reply([
                    "OK draining \(replies.count) of \(workers.count) workers: listeners closed, clients get "
                        + "DISCONNECT over \(Figures.decimal(config.server.drainTimeout, 1)) s; reload takes clients again"
                ])
            }
        case .logLevel(let level):
            LogSetup.setLevel(level)
            logger.notice("log level changed", metadata: ["level": "\(level)"])
            let workers = Array(links.keys)
            ask(workers, "log-level", [level.rawValue]) { replies in
                client.reply(["OK log level \(level) in the master and \(replies.count) of \(workers.count) workers"])
            }
        }
    }

    /// Sends command `name` to `workers` and calls `done` with their replies (those that answered in time).
    func ask(
        _ workers: [pid_t], _ name: String, _ arguments: [String], _ done: @escaping (WorkerRequests.Replies) -> Void
    ) {
        let reachable = workers.filter { links[$0]?.isOpen == true }
        guard !reachable.isEmpty else { return done([:]) }
        let id = requests.start(waitingFor: Set(reachable), deadline: now() + Self.replyTimeout, done: done)
        let message = ControlMessage.command(id: id, name: name, arguments: arguments)
        for pid in reachable { links[pid]?.send(message) }
    }

    /// `stats`: the workers' figures, the notifier processes, and the notifiers' figures one worker reads from
    /// Redis (left out when no worker can).
    private func stats(_ client: AdminConnection) {
        let now = now()
        let notifiers = children.filter { $0.value.index >= Self.firstNotifier }.sorted { $0.value.index < $1.value.index }
        let lines = report().statsLines() + notifiers.map { pid, child in
            "notifier \(child.index - Self.firstNotifier) pid=\(pid) gen=\(child.generation) up_s=\(Int(now - child.started))"
        }
        guard config.notify.workers > 0 || !notifiers.isEmpty else { return client.reply(lines) }
        askRedisWorker("notify-stats", []) { reply in
            client.reply(lines + reply.filter { !$0.hasPrefix("ERR ") })
        }
    }

    /// Sends `name` to one worker, one whose Redis is up if any, and hands over its reply (an `ERR` line when none
    /// answered).
    func askRedisWorker(
        _ name: String, _ arguments: [String], _ done: @escaping ([String]) -> Void
    ) {
        let asked = currentWorkers.first { metrics.workers[Int($0)]?.snapshot.redisUp == true } ?? currentWorkers.first
        guard let asked else { return done(["ERR no worker is running"]) }
        ask([asked], name, arguments) { replies in
            done(replies.values.first ?? ["ERR the worker did not answer within \(Self.replyTimeout) s"])
        }
    }

    /// `conns [uid]`: every worker's connection lines, prefixed with the worker's index, then `total <n>`.
    private func conns(_ user: String?, _ client: AdminConnection) {
        let workers = children.filter { $0.value.index < Self.firstNotifier }.sorted { ($0.value.index, $0.value.generation) < ($1.value.index, $1.value.generation) }
        ask(workers.map(\.key), "conns", user.map { [$0] } ?? []) { replies in
            var lines: [String] = []
            var total = 0
            for (pid, child) in workers {
                guard let reply = replies[pid] else {
                    if self.links[pid] != nil { lines.append("worker=\(child.index) pid=\(pid) did not answer") }
                    continue
                }
                for line in reply {
                    if let matched = Self.number(after: "matched", in: [line]) {
                        total += matched
                    } else {
                        lines.append("worker=\(child.index) \(line)")
                    }
                }
            }
            lines.append("total \(total)")
            client.reply(lines)
        }
    }

    /// `nodes`: the registry in Redis as one worker reads it, this gateway's nodes marked `local`; this gateway's
    /// workers alone when no worker can read it.
    private func nodes(_ client: AdminConnection) {
        var local: [String: WorkerSnapshot] = [:]
        for worker in metrics.workers.values { local[worker.snapshot.node] = worker.snapshot }
        let asked = currentWorkers.first { metrics.workers[Int($0)]?.snapshot.redisUp == true } ?? currentWorkers.first
        ask(asked.map { [$0] } ?? [], "nodes", []) { replies in
            let reply = replies.values.first ?? ["ERR no worker answered"]
            if let failure = reply.first, failure.hasPrefix("ERR ") {
                var lines = local.values.sorted { $0.index < $1.index }.map {
                    "node \($0.node) conns=\($0.connections) local worker=\($0.index) pid=\($0.pid)"
                }
                lines.append("registry unavailable: \(failure.dropFirst(4))")
                return client.reply(lines)
            }
            client.reply(
                reply.map { line in
                    let id = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                    guard let snapshot = local[id] else { return line }
                    return line + " local worker=\(snapshot.index) pid=\(snapshot.pid)"
                })
        }
    }

    /// The integer after `word ` in the first line that starts with it.
    private static func number(after word: String, in lines: [String]) -> Int? {
        for line in lines where line.hasPrefix(word + " ") {
            return Int(line.dropFirst(word.count + 1).prefix { $0 != " " })
        }
        return nil
    }
}
