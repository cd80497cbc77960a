import PushCore
import PushPosix

/// The edge's writes and fresh reads in Redis, shared by the HTTP API (`/v1/bans`, `/v1/route/rules`) and the
/// admin socket (`bans`, `ban`, `unban`): each goes to Redis, and a change applies on this worker once Redis took it.
extension EdgeState {
    /// Stores a new ban made from `request` now, with a fresh id; applied here once stored.
    func addBan(_ request: BanRequest, _ done: @escaping (Result<Ban, StoreFailure>) -> Void) {
        var random = SystemRandomNumberGenerator()
        let ban = request.ban(id: Ban.newID(using: &random), now: Self.now())
        scripts.run(BanCall(.add(ban))) { [unowned self] result in
            switch result {
            case .success:
                logger.notice(
                    "ban added",
                    metadata: [
                        "id": "\(ban.id)", "ip": "\(ban.ip?.description ?? "-")", "user": "\(ban.user ?? "-")",
                        "device": "\(ban.device ?? "-")", "expires_at": "\(ban.expiresAt)", "reason": "\(ban.reason)",
                    ])
                added(ban)
                done(.success(ban))
            case .failure(let failure):
                done(.failure(failure))
            }
        }
    }

    /// Lifts ban `id`; `done` gets whether there was one.
    func removeBan(_ id: String, _ done: @escaping (Result<Bool, StoreFailure>) -> Void) {
        scripts.run(BanCall(.remove(id: id))) { [unowned self] result in
            switch result {
            case .success(let version):
                if version > 0 {
                    logger.notice("ban lifted", metadata: ["id": "\(id)"])
                    lifted(id)
                }
                done(.success(version > 0))
            case .failure(let failure):
                done(.failure(failure))
            }
        }
    }

    /// The bans in force, read from Redis now, by id; expired ones are removed from Redis on the way (that changes
    /// nothing on any node, so the version stays).
    func listBans(_ done: @escaping (Result<[Ban], StoreFailure>) -> Void) {
        scripts.send(Self.command("HGETALL", RedisKeys.bans)) { [unowned self] result in
            switch result {
            case .success(.array(let fields)):
                let now = Self.now()
                let bans = Self.decodeBans(fields, logger: logger).sorted { $0.id < $1.id }
                let expired = bans.filter { $0.isExpired(now: now) }.map(\.id)
                let listed = bans.filter { !$0.isExpired(now: now) }
                guard !expired.isEmpty else { return done(.success(listed)) }
                // Answered once they are gone: whoever reads pg:{bans} after the listing no longer finds them.
                scripts.command(["HDEL", RedisKeys.bans] + expired) { _ in done(.success(listed)) }
            case .success(let reply):
                done(.failure(.script(.unexpectedReply(script: "HGETALL", "expected the bans hash", reply: reply))))
            case .failure(let error):
                done(.failure(.unavailable(error)))
            }
        }
    }

    /// The route rules as stored in Redis now (the defaults when none are).
    func readRules(_ done: @escaping (Result<RouteRules, StoreFailure>) -> Void) {
        scripts.send(Self.command("GET", RedisKeys.routeRules)) { result in
            switch result {
            case .success(.null):
                done(.success(RouteRules()))
            case .success(.string(let bytes)):
                do {
                    done(.success(try RouteRules(body: bytes)))
                } catch {
                    let detail = "unreadable route rules: \(error)"
                    done(.failure(.script(.unexpectedReply(script: "GET", detail, reply: .string(bytes)))))
                }
            case .success(let reply):
                done(.failure(.script(.unexpectedReply(script: "GET", "expected the route rules", reply: reply))))
            case .failure(let error):
                done(.failure(.unavailable(error)))
            }
        }
    }

    /// Stores `rules` for every node; applied here once stored.
    func writeRules(_ rules: RouteRules, _ done: @escaping (Result<Void, StoreFailure>) -> Void) {
        let json = rules.json
        scripts.send([Array("SET".utf8), Array(RedisKeys.routeRules.utf8), json]) { [unowned self] result in
            switch result {
            case .success(.error(let message)):
                done(.failure(.script(.server(script: "SET", message: message))))
            case .success:
                logger.notice("route rules stored", metadata: ["rules": "\(String(decoding: json, as: UTF8.self))"])
                stored(rules)
                done(.success(()))
            case .failure(let error):
                done(.failure(.unavailable(error)))
            }
        }
    }
}
