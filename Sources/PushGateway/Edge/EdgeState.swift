import Logging
import PushCore
import PushPosix

/// The shared half of the internet edge on one worker (SPEC §8): the bans in force and the route rules. Both live
/// in Redis (`pg:{bans}` with its version `pg:{bans}:v`, and `pg:{rules}`) and are read by every node: twice a
/// second a worker reads the version and the rules (two small GETs) and reloads the bans only when the version
/// moved, so a change made on any node applies everywhere within a second. A change made through this worker
/// (the HTTP API, the admin socket) goes to Redis first, then applies here at once.
///
/// When Redis is down the worker keeps the last bans and rules it read; expired bans stop matching by themselves
/// (`BanList` compares with the time) and are dropped at the next poll.
final class EdgeState {
    /// Seconds between two polls: a change reaches every node within this plus two round trips.
    static let pollSeconds = 0.5

    let scripts: ScriptRunner
    let logger: Logger
    /// The bans this node applies: at accept, AUTH, register, and to open connections when one is added.
    private(set) var bans = BanList()
    /// The route rules `POST /v1/register` applies.
    private(set) var rules = RouteRules()
    /// The bans changed: the new list, and the bans it holds that the previous one did not (to apply to the
    /// connections already open).
    var onBans: ((BanList, [Ban]) -> Void)?

    /// `pg:{bans}:v` as last loaded (nil: not yet; `.null`: no ban was ever set).
    private var bansVersion: RedisValue?
    /// `pg:{rules}` as last applied (nil: not yet, or absent).
    private var rulesBytes: [UInt8]?
    private var polling = false
    private var timer: LoopTimer!

    init(loop: EventLoop, scripts: ScriptRunner, logger: Logger) {
        self.scripts = scripts
        self.logger = logger
        timer = LoopTimer(loop: loop) { [unowned self] in self.poll() }
    }

    /// Polls from now on, and at once whenever the Redis connection is ready again.
    func start() {
        scripts.whenReady { [unowned self] in self.poll() }
        timer.start(after: Self.pollSeconds, repeat: Self.pollSeconds)
    }

    func stop() { timer.stop() }

    // MARK: - Reading what every node shares

    private func poll() {
        dropExpired()
        guard scripts.isAvailable, !polling else { return }
        polling = true
        var pending = 2
        let finished = { [unowned self] in
            pending -= 1
            if pending == 0 { self.polling = false }
        }
        scripts.send(Self.command("GET", RedisKeys.bansVersion)) { [unowned self] result in
            guard case .success(let version) = result, version != bansVersion, Self.isValue(version) else {
                return finished()
            }
            scripts.send(Self.command("HGETALL", RedisKeys.bans)) { [unowned self] result in
                defer { finished() }
                guard case .success(.array(let fields)) = result else { return }
                bansVersion = version
                replaceBans(Self.decodeBans(fields, logger: logger))
            }
        }
        scripts.send(Self.command("GET", RedisKeys.routeRules)) { [unowned self] result in
            defer { finished() }
            switch result {
            case .success(.null): applyRules(nil)
            case .success(.string(let bytes)): applyRules(bytes)
            default: break
            }
        }
    }

    /// Takes the list just read from Redis: bans new to this node are applied to its open connections.
    private func replaceBans(_ loaded: [Ban]) {
        let now = Self.now()
        var list = BanList(loaded)
        _ = list.removeExpired(now: now)
        let added = list.bans.filter { bans[$0.id] == nil }
        let lifted = bans.bans.filter { list[$0.id] == nil }
        bans = list
        guard !added.isEmpty || !lifted.isEmpty else { return }
        logger.info(
            "bans loaded",
            metadata: ["count": "\(list.count)", "added": "\(added.count)", "lifted": "\(lifted.count)"])
        onBans?(bans, added)
    }

    private func applyRules(_ bytes: [UInt8]?) {
        guard bytes != rulesBytes else { return }
        guard let bytes else {
            rulesBytes = nil
            if rules != RouteRules() { logger.info("route rules removed from Redis: the defaults apply") }
            rules = RouteRules()
            return
        }
        do {
            rules = try RouteRules(body: bytes)
            rulesBytes = bytes
            logger.info("route rules loaded", metadata: ["rules": "\(String(decoding: bytes, as: UTF8.self))"])
        } catch {
            // Only this gateway writes the key, after checking the rules: keep what applied before.
            rulesBytes = bytes
            logger.warning(
                "route rules in Redis are unreadable, keeping the previous ones", metadata: ["error": "\(error)"])
        }
    }

    private func dropExpired() {
        guard !bans.isEmpty else { return }
        let expired = bans.removeExpired(now: Self.now())
        guard !expired.isEmpty else { return }
        for ban in expired { logger.info("ban expired", metadata: ["id": "\(ban.id)"]) }
        onBans?(bans, [])
    }

    // MARK: - Changes made here

    /// A ban this worker added (already in Redis): applied here at once.
    func added(_ ban: Ban) {
        bans.insert(ban)
        onBans?(bans, [ban])
    }

    /// A ban this worker lifted (already gone from Redis).
    func lifted(_ id: String) {
        guard bans.remove(id: id) != nil else { return }
        onBans?(bans, [])
    }

    /// Rules this worker stored (already in Redis).
    func stored(_ rules: RouteRules) {
        self.rules = rules
        rulesBytes = rules.json
    }

    // MARK: - Helpers

    /// The bans of an `HGETALL pg:{bans}` reply; a ban that cannot be read is logged and skipped.
    static func decodeBans(_ fields: [RedisValue], logger: Logger) -> [Ban] {
        var bans: [Ban] = []
        for index in stride(from: 1, to: fields.count, by: 2) {
            guard case .string(let bytes) = fields[index] else { continue }
            do {
                bans.append(try Ban(json: bytes))
            } catch {
                logger.warning(
                    "unreadable ban in Redis, skipped",
                    metadata: ["id": "\(fields[index - 1].text ?? "?")", "error": "\(error)"])
            }
        }
        return bans
    }

    static func command(_ words: String...) -> [[UInt8]] { words.map { Array($0.utf8) } }

    /// Unix seconds now, as bans count them.
    static func now() -> Int { Int(Posix.wallSeconds()) }

    private static func isValue(_ reply: RedisValue) -> Bool {
        switch reply {
        case .string, .integer, .null: true
        default: false
        }
    }
}
