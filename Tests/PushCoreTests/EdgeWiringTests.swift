// The pieces that carry bans, route rules and API limits into the gateway (SPEC §8): their Redis call, wire
// codes, HTTP errors and routes, the admin commands, and the lookups the gateway makes.
import Testing

@testable import PushCore

private func address(_ text: String) -> IPAddress { IPAddress(text)! }
private func range(_ text: String) -> CIDR { try! CIDR(text) }
private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite("Edge: wiring")
struct EdgeWiringTests {
    // MARK: - Route rules read from JSON

    /// Rules read from a PUT body decide as the same rules built in Swift: allow and deny are indexed.
    @Test func rulesFromJSONDecide() throws {
        let body = #"{"long_connection":false,"percent":0,"allow":[{"user":"vip"},{"version":"2.*"}],"#
            + #""deny":[{"device":"bad"}]}"#
        let rules = try RouteRules(body: Array(body.utf8))
        #expect(rules.decide(uid: "vip", device: nil, version: nil) == (true, nil))
        #expect(rules.decide(uid: "anyone", device: nil, version: "2.1") == (true, nil))
        #expect(rules.decide(uid: "anyone", device: nil, version: "1.9") == (false, nil))
        #expect(rules.decide(uid: "vip", device: "bad", version: nil) == (false, nil))
        let gray = try RouteRules(body: Array(#"{"gray":{"group":"canary","percent":100}}"#.utf8))
        #expect(gray.decide(uid: "u1", device: nil, version: nil) == (true, "canary"))
    }

    // MARK: - Redis

    /// `bans.lua` gets the hash and the version under one tag; a set carries the ban's JSON, a del the id.
    @Test func banCall() throws {
        let ban = Ban(id: "0123456789abcdef", ip: range("203.0.113.0/24"), user: "u1", reason: "r", expiresAt: 99)
        let add = BanCall(.add(ban))
        #expect(add.keys.map(text) == ["pg:{bans}", "pg:{bans}:v"])
        #expect(add.args.map(text) == ["set", ban.id, text(ban.json)])
        #expect(try Ban(json: add.args[2]) == ban)
        #expect(BanCall(.remove(id: "x")).args.map(text) == ["del", "x"])
        #expect(try BanCall.decode(.integer(7)) == 7)
        #expect(throws: ScriptError.self) { try BanCall.decode(.error("ERR pushgw bans: …")) }
        #expect(RedisSlot.of(key: RedisKeys.bans) == RedisSlot.of(key: RedisKeys.bansVersion))
    }

    // MARK: - What clients and backends are told

    /// AUTH refused: ERROR `banned` (fatal, WebSocket 1008) answering the AUTH frame; counted as `banned`.
    @Test func bannedAtAuth() {
        let reason = CloseReason.bannedAtAuth(until: 1_800_000_000, sequence: 3)
        #expect(reason.kind == .banned)
        let farewell = reason.farewell
        #expect(farewell.frame?.operation == .error && farewell.frame?.sequence == 3)
        #expect(
            farewell.frame.map { text($0.body) }
                == #"{"code":"banned","message":"banned until 1800000000 (Unix time)","op":7}"#)
        #expect(farewell.webSocketStatus == .policyViolation && farewell.flushes)
        #expect(ProtocolError.banned(until: 0).isFatal && ProtocolError.banned(until: 0).message == "banned")
    }

    /// A ban added while open: DISCONNECT `banned`, not to reconnect; at accept nothing is said.
    @Test func bannedFarewells() {
        let farewell = CloseReason.banned.farewell
        #expect(CloseReason.banned.kind == .banned)
        #expect(farewell.frame.map { text($0.body) } == #"{"reason":"banned","reconnect":false,"after_ms":0}"#)
        #expect(farewell.webSocketStatus == .normal && farewell.detail == "banned")
        let silent = CloseReason.bannedAddress.farewell
        #expect(CloseReason.bannedAddress.kind == .banned && silent.frame == nil && !silent.flushes)
    }

    /// 403 forbidden, 403 banned, 429 with Retry-After (at least 1 s).
    @Test func apiErrors() {
        #expect(APIError.forbidden.status == 403 && APIError.forbidden.code == "forbidden")
        #expect(APIError.banned(until: 0).code == "banned" && APIError.banned(until: 0).status == 403)
        let limited = APIError.rateLimited(retryAfter: 0)
        #expect(limited.status == 429 && limited.code == "rate_limited")
        #expect(limited.headers.first { $0.0 == "Retry-After" }?.1 == "1")
        #expect(APIError.rateLimited(retryAfter: 3).headers.first { $0.0 == "Retry-After" }?.1 == "3")
    }

    @Test(arguments: [
        ("GET", "/v1/bans", APIRoute.listBans), ("POST", "/v1/bans", .addBan),
        ("DELETE", "/v1/bans/0123abcd", .removeBan("0123abcd")), ("GET", "/v1/route/rules", .routeRules),
        ("PUT", "/v1/route/rules", .putRouteRules),
    ])
    func routes(_ method: String, _ path: String, _ route: APIRoute) throws {
        #expect(try APIRoute.match(method: method, path: path) == route)
        #expect(route.needsKey)
    }

    @Test func routeMethods() {
        let bans = #expect(throws: APIError.self) { try APIRoute.match(method: "PUT", path: "/v1/bans") }
        #expect(bans?.status == 405 && bans?.headers.first?.1 == "GET, POST")
        let one = #expect(throws: APIError.self) { try APIRoute.match(method: "GET", path: "/v1/bans/x") }
        #expect(one?.status == 405 && one?.headers.first?.1 == "DELETE")
        let rules = #expect(throws: APIError.self) { try APIRoute.match(method: "POST", path: "/v1/route/rules") }
        #expect(rules?.status == 405 && rules?.headers.first?.1 == "GET, PUT")
    }

    /// Register's long-poll path names the user in one segment.
    @Test func pollPath() {
        #expect(PercentEncoding.pathSegment("u-1.a_b~") == "u-1.a_b~")
        #expect(PercentEncoding.pathSegment("a/b c?é") == "a%2Fb%20c%3F%C3%A9")
        #expect(PercentDecoding.decode(PercentEncoding.pathSegment("a/b c?é")) == "a/b c?é")
    }

    // MARK: - Limits

    /// An instance's budget split between its workers: the rate divided, the burst divided rounded up.
    @Test func workerShare() {
        #expect(RateLimit.share(of: (0, 100), workers: 4).isUnlimited)
        #expect(RateLimit.share(of: (10, 20), workers: 1) == RateLimit(rate: 10, burst: 20))
        let share = RateLimit.share(of: (10, 5), workers: 4)
        #expect(share.rate == 2.5 && share.burst == 2)
        // No burst: one second of the worker's rate, rounded up.
        #expect(RateLimit.share(of: (10, 0), workers: 4).burst == 3)
        #expect(RateLimit.share(of: (1, 1), workers: 8).burst == 1)
    }

    // MARK: - Lookups

    /// Register sees bans on the user or device that name no address; the caller is a backend.
    @Test func bansIdentity() {
        let list = BanList([
            Ban(id: "u", user: "spammer"), Ban(id: "d", device: "stolen"), Ban(id: "ud", user: "u2", device: "k2"),
            Ban(id: "iu", ip: range("192.0.2.0/24"), user: "u1"), Ban(id: "ip", ip: range("10.0.0.0/8")),
            Ban(id: "old", user: "gone", expiresAt: 10),
        ])
        #expect(list.bansIdentity(user: "spammer", device: "k", now: 100)?.id == "u")
        #expect(list.bansIdentity(user: "anyone", device: "stolen", now: 100)?.id == "d")
        #expect(list.bansIdentity(user: "u2", device: "k2", now: 100)?.id == "ud")
        #expect(list.bansIdentity(user: "u2", device: "k3", now: 100) == nil)
        #expect(list.bansIdentity(user: "u1", device: "k", now: 100) == nil)
        #expect(list.bansIdentity(user: "gone", device: nil, now: 100) == nil)
        #expect(list.bansIdentity(user: "gone", device: nil, now: 5)?.id == "old")
        #expect(list.hasAddressBans && list.namesAddresses)
    }

    /// Whether an address must be looked up: only while some ban names one.
    @Test func addressNeeds() {
        var list = BanList([Ban(id: "u", user: "x")])
        #expect(!list.hasAddressBans && !list.namesAddresses && !list.isEmpty)
        list.insert(Ban(id: "iu", ip: range("2001:db8::/32"), user: "x"))
        #expect(!list.hasAddressBans && list.namesAddresses)
        list.insert(Ban(id: "v6", ip: range("2001:db8:1::/48")))
        #expect(list.hasAddressBans)
        list.remove(id: "iu")
        list.remove(id: "v6")
        #expect(!list.hasAddressBans && !list.namesAddresses)
    }

    /// IPv6 ranges at AUTH: an address-only range and a range with a user, v4-mapped addresses as IPv4.
    @Test(arguments: [
        ("2001:db8:1::5", "u9", "v6"), ("2001:db8:2::5", "u9", nil), ("2001:db8:2::5", "u1", "iu"),
        ("2001:db9::1", "u1", nil), ("::ffff:192.0.2.1", "u4", "v4"), ("192.0.2.1", "u4", "v4"),
    ])
    func v6Sessions(_ ip: String, _ user: String, _ id: String?) {
        let list = BanList([
            Ban(id: "v6", ip: range("2001:db8:1::/48")), Ban(id: "iu", ip: range("2001:db8::/32"), user: "u1"),
            Ban(id: "v4", ip: range("192.0.2.0/24")),
        ])
        #expect(list.bansSession(ip: address(ip), user: user, device: "k", now: 0)?.id == id)
    }

    // MARK: - Admin commands

    @Test func adminBanCommands() throws {
        #expect(try AdminCommand.parse("bans").get() == .bans)
        #expect(try AdminCommand.parse("unban 0123abcd").get() == .unban("0123abcd"))
        let parsed = try AdminCommand.parse("ban ip=203.0.113.0/24 user=u1 ttl=600 reason=too  many requests").get()
        #expect(
            parsed
                == .ban(BanRequest(ip: range("203.0.113.0/24"), user: "u1", ttl: 600, reason: "too many requests")))
        #expect(try AdminCommand.parse("ban device=k1").get() == .ban(BanRequest(device: "k1")))
        #expect(try AdminCommand.parse("ban user=u1 ttl=0").get() == .ban(BanRequest(user: "u1")))
        // What the master sends a worker reads back the same.
        let request = BanRequest(ip: range("2001:db8::/32"), device: "k", ttl: 5, reason: "r")
        #expect(try BanRequest(body: request.json) == request)
    }

    @Test(arguments: [
        ("ban", "give at least one of ip, user, device"), ("ban ttl=5", "give at least one of ip, user, device"),
        ("ban user", "is not name=value"), ("ban user=a user=b", "user given twice"), ("ban who=x", "unknown \"who\""),
        ("ban ip=10.0.0.1/8 ", "ip:"), ("ban user=u ttl=soon", "ttl must be whole seconds"),
        ("ban user=u ttl=-1", "ttl must be"), ("unban", "usage: unban <id>"), ("unban a b", "usage: unban <id>"),
        ("bans x", "usage: bans"),
    ])
    func adminBanErrors(_ line: String, _ message: String) {
        guard case .failure(let error) = AdminCommand.parse(line) else {
            Issue.record("\(line) parsed")
            return
        }
        #expect(error.message.contains(message), "\(line): \(error.message)")
    }
}

/// `bans.lua` against a real redis-server (PUSHGW_TEST_REDIS_URL): the hash and the version move together.
@Suite struct BanScriptTests {
    @Test func setAndDelete() throws {
        let redis = try RedisTestClient()
        let ban = Ban(id: unique("ban"), user: "u1", reason: "script test")
        let first = try redis.run(BanCall(.add(ban)))
        #expect(first >= 1)
        #expect(try redis.command(["HGET", RedisKeys.bans, ban.id].map { Array($0.utf8) }) == .string(ban.json))
        #expect(try redis.run(BanCall(.remove(id: ban.id))) == first + 1)
        #expect(try redis.run(BanCall(.remove(id: ban.id))) == 0, "lifting it again changes nothing")
        let version = try redis.command(["GET", RedisKeys.bansVersion].map { Array($0.utf8) }).int
        #expect(version.map { UInt64($0) >= first + 1 } == true)
        let bad = try redis.command(
            Scripts.bans.eval(keys: BanCall(.remove(id: "x")).keys, args: [Array("put".utf8), Array("x".utf8)]))
        #expect(throws: ScriptError.self) { try BanCall.decode(bad) }
    }
}
