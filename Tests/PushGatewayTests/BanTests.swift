// Bans (SPEC §8): every kind applied where it belongs — an address at accept, a user or device at AUTH and
// register, a new ban to connections already open — their expiry, listing and lifting. Banned clients connect
// from 127.0.0.x addresses other than 127.0.0.1.
import Foundation
import Testing

@Suite("Bans", .timeLimit(.minutes(1)))
struct BanTests {
    @Test("An address ban closes connections from it at accept, without a frame; other addresses are served")
    func addressAtAccept() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        try await gateway.ban(#"{"ip":"127.0.0.2","reason":"one address"}"#)
        let banned = try await WireClient.connect(gateway, from: "127.0.0.2")
        try await banned.expectClosedAtAccept("127.0.0.2 is banned")
        let other = try await WireClient.connect(gateway, from: "127.0.0.3")
        #expect(number(try await other.auth(mid: "neighbour", key: "k")["code"]) == 0)
        try await gateway.expectCounter("pushgw_banned_at_accept_total", atLeast: 1)
        try await gateway.expectCounter("pushgw_connections_closed_total{reason=\"banned\"}", atLeast: 1)
    }

    @Test("An IPv4 range ban (127.0.0.16/28) closes its addresses at accept and spares those outside it")
    func rangeAtAccept() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        try await gateway.ban(#"{"ip":"127.0.0.16/28"}"#)
        for source in ["127.0.0.16", "127.0.0.20", "127.0.0.31"] {
            try await WireClient.connect(gateway, from: source).expectClosedAtAccept("\(source) is in 127.0.0.16/28")
        }
        for (index, source) in ["127.0.0.15", "127.0.0.32"].enumerated() {
            let client = try await WireClient.connect(gateway, from: source)
            #expect(number(try await client.auth(mid: .string("outside-\(index)"), key: "k")["code"]) == 0, "\(source)")
        }
    }

    @Test("A user ban: ERROR banned at AUTH, 403 banned at register; other users and the ban's listing as given")
    func user() async throws {
        let gateway = try await GatewayProcess.start(registerSecret)
        defer { gateway.stop() }
        let id = try await gateway.ban(#"{"user":"spammer","ttl":600,"reason":"spam"}"#)
        let client = try await WireClient.connect(gateway)
        try await client.expectBannedAtAuth(mid: "spammer", key: "phone", "a banned user")
        let fine = try await WireClient.connect(gateway)
        #expect(number(try await fine.auth(mid: "citizen", key: "phone")["code"]) == 0)

        let refused = try await gateway.register("spammer", device: "phone")
        #expect(refused.status == 403 && refused.errorCode == "banned", "\(refused)")
        expectErrorShape(refused, "register of a banned user")
        #expect(try await gateway.register("citizen", device: "phone").status == 200)

        let bans = try await gateway.banList()
        let ban = try #require(bans.first { $0["id"] as? String == id }, "\(bans)")
        #expect(ban["user"] as? String == "spammer" && ban["reason"] as? String == "spam", "\(ban)")
        #expect(ban["ip"] is NSNull && ban["device"] is NSNull, "unset fields are null: \(ban)")
        #expect(abs((number(ban["expires_at"]) ?? 0) - (unixNow() + 600)) < 5, "\(ban)")
        try await gateway.expectCounter("pushgw_banned_at_auth_total", atLeast: 1)
        try await gateway.expectCounter("pushgw_banned_registers_total", atLeast: 1)
    }

    @Test("A device ban refuses that device key for any user, and its register; the user's other devices are fine")
    func device() async throws {
        let gateway = try await GatewayProcess.start(registerSecret)
        defer { gateway.stop() }
        try await gateway.ban(#"{"device":"stolen-phone"}"#)
        try await WireClient.connect(gateway).expectBannedAtAuth(mid: "owner", key: "stolen-phone", "the device")
        try await WireClient.connect(gateway).expectBannedAtAuth(mid: "thief", key: "stolen-phone", "another user")
        let other = try await WireClient.connect(gateway)
        #expect(number(try await other.auth(mid: "owner", key: "new-phone")["code"]) == 0)
        #expect(try await gateway.register("thief", device: "stolen-phone").status == 403)
        #expect(try await gateway.register("owner", device: "new-phone").status == 200)
    }

    @Test("ip and user together ban that user from that address only: the office and the user elsewhere stay")
    func addressAndUser() async throws {
        let gateway = try await GatewayProcess.start(registerSecret)
        defer { gateway.stop() }
        try await gateway.ban(#"{"ip":"127.0.0.4","user":"abuser"}"#)
        try await WireClient.connect(gateway, from: "127.0.0.4").expectBannedAtAuth(
            mid: "abuser", key: "k", "the user from the banned address")
        let colleague = try await WireClient.connect(gateway, from: "127.0.0.4")
        #expect(number(try await colleague.auth(mid: "colleague", key: "k")["code"]) == 0, "the office is not banned")
        let elsewhere = try await WireClient.connect(gateway, from: "127.0.0.5")
        #expect(number(try await elsewhere.auth(mid: "abuser", key: "k2")["code"]) == 0, "the user elsewhere")
        // Register is called by a backend, whose address is not the device's: only bans naming no address apply.
        #expect(try await gateway.register("abuser", device: "k").status == 200)
    }

    @Test("A new ban sends DISCONNECT banned, reconnect false, to the open connections it covers, and only those")
    func openConnections() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let target = try await WireClient.connect(gateway)
        try await target.auth(mid: "live-user", key: "a")
        let second = try await WireClient.connect(gateway)
        try await second.auth(mid: "live-user", key: "b")
        let fromAddress = try await WireClient.connect(gateway, from: "127.0.0.6")
        try await fromAddress.auth(mid: "someone", key: "c")
        let bystander = try await WireClient.connect(gateway)
        try await bystander.auth(mid: "bystander", key: "d")

        try await gateway.ban(#"{"user":"live-user"}"#)
        try await target.expectBannedDisconnect("the user's first device")
        try await second.expectBannedDisconnect("the user's second device")
        try await gateway.ban(#"{"ip":"127.0.0.6"}"#)
        try await fromAddress.expectBannedDisconnect("a connection from a newly banned address")
        try await bystander.expectNothingPending("a connection no ban covers")
        try await gateway.expectCounter("pushgw_banned_disconnects_total", atLeast: 3)
    }

    @Test("A ban with a ttl ends by itself: refused before, served after, gone from GET /v1/bans and from Redis")
    func expiry() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let id = try await gateway.ban(#"{"user":"brief","ttl":1}"#)
        try await gateway.ban(#"{"user":"forever"}"#)
        try await WireClient.connect(gateway).expectBannedAtAuth(mid: "brief", key: "k", "within the ttl")
        try await pause(1.3)
        let client = try await WireClient.connect(gateway)
        #expect(number(try await client.auth(mid: "brief", key: "k")["code"]) == 0, "after the ttl")
        let listed = try await gateway.banList()
        #expect(listed.map { $0["user"] as? String } == ["forever"], "\(listed)")
        let redis = try #require(gateway.redis)
        #expect(try redisCall(redis, ["HEXISTS", "pg:{bans}", id]) == "0", "the listing removed it from Redis")
    }

    @Test("DELETE /v1/bans/{id} lifts a ban at once (404 the second time); bad bodies are 400 naming the field")
    func unbanAndBadBodies() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let id = try await gateway.ban(#"{"user":"pardoned"}"#)
        try await WireClient.connect(gateway).expectBannedAtAuth(mid: "pardoned", key: "k", "banned")
        let lifted = try await gateway.http(HTTP.request("DELETE", "/v1/bans/\(id)"))
        #expect(lifted.status == 200 && lifted.json?["removed"] as? Bool == true, "\(lifted)")
        let client = try await WireClient.connect(gateway)
        #expect(number(try await client.auth(mid: "pardoned", key: "k")["code"]) == 0, "lifted")
        let again = try await gateway.http(HTTP.request("DELETE", "/v1/bans/\(id)"))
        #expect(again.status == 404 && again.errorCode == "not_found", "\(again)")

        for (body, field) in [
            (#"{}"#, "ip, user, device"), (#"{"ip":"300.1.1.1"}"#, "ip"), (#"{"ip":"10.0.0.1/8"}"#, "ip"),
            (#"{"user":"u","ttl":-5}"#, "ttl"), (#"{"user":"u","ttl":"10"}"#, "ttl"), (#"{"users":["u"]}"#, "users"),
            (#"{"user":"u","reason":7}"#, "reason"), (#"{"device":""}"#, "device"), ("[1]", "object"),
        ] {
            let response = try await gateway.http(HTTP.request("POST", "/v1/bans", body: body))
            #expect(response.status == 400 && response.errorCode == "bad_request", "\(body): \(response)")
            #expect(response.errorMessage?.contains(field) == true, "\(body) names \(field): \(response)")
        }
        #expect(try await gateway.banList().isEmpty)
    }

    @Test("Redis down: the ban endpoints answer 503; bans already read still close addresses and refuse users")
    func redisDown() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        try await gateway.ban(#"{"user":"kept-out"}"#)
        try await gateway.ban(#"{"ip":"127.0.0.7"}"#)
        gateway.stopRedis()
        let down = try await eventually { try await gateway.http(HTTP.request("GET", "/healthz")).status == 503 }
        #expect(down)
        for request in [
            HTTP.request("POST", "/v1/bans", body: #"{"user":"x"}"#), HTTP.request("GET", "/v1/bans"),
            HTTP.request("DELETE", "/v1/bans/0123"), HTTP.request("GET", "/v1/route/rules"),
            HTTP.request("PUT", "/v1/route/rules", body: "{}"),
        ] {
            let response = try await gateway.http(request)
            #expect(response.status == 503 && response.header("retry-after") == "1", "\(response)")
        }
        try await WireClient.connect(gateway).expectBannedAtAuth(mid: "kept-out", key: "k", "with Redis down")
        try await WireClient.connect(gateway, from: "127.0.0.7").expectClosedAtAccept("with Redis down")
    }
}
