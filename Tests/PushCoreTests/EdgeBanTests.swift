import Testing

@testable import PushCore

private func address(_ text: String) -> IPAddress { IPAddress(text)! }
private func range(_ text: String) -> CIDR { try! CIDR(text) }
private let second: UInt64 = 1_000_000_000

@Suite("Edge: bans")
struct EdgeBanTests {
    static let list = BanList([
        Ban(id: "a", ip: range("203.0.113.7"), reason: "one address"),
        Ban(id: "b", ip: range("198.51.100.0/24"), reason: "a range", expiresAt: 2000),
        Ban(id: "c", user: "spammer"),
        Ban(id: "d", device: "stolen-phone"),
        Ban(id: "e", ip: range("192.0.2.0/24"), user: "u1", reason: "u1 from the office only"),
        Ban(id: "f", ip: range("2001:db8::/32")),
        Ban(id: "g", user: "u2", device: "k2"),
    ])

    /// At accept only address-only bans count; the user is not known yet.
    @Test(arguments: [
        ("203.0.113.7", "a"), ("::ffff:203.0.113.7", "a"), ("203.0.113.8", nil), ("198.51.100.200", "b"),
        ("192.0.2.1", nil), ("2001:db8:1::5", "f"), ("2001:db9::", nil),
    ])
    func bansAddress(_ ip: String, _ id: String?) {
        #expect(Self.list.bansAddress(address(ip), now: 1000)?.id == id)
    }

    /// At AUTH the address, user and device all count, each ban matching when every field it sets does.
    @Test(arguments: [
        ("10.0.0.1", "spammer", nil, "c"),
        ("10.0.0.1", "someone", "stolen-phone", "d"),
        ("10.0.0.1", "someone", "other-phone", nil),
        ("192.0.2.9", "u1", "k", "e"),
        ("192.0.2.9", "u9", "k", nil),  // the office is not banned for u1's sake
        ("10.0.0.1", "u1", "k", nil),  // u1 elsewhere is fine
        ("198.51.100.1", "anyone", nil, "b"),
        ("10.0.0.1", "u2", "k2", "g"),
        ("10.0.0.1", "u2", "k3", nil),
        ("10.0.0.1", "u3", "k2", nil),
        ("10.0.0.1", "u2", nil, nil),
    ] as [(String, String, String?, String?)])
    func bansSession(_ ip: String, _ user: String, _ device: String?, _ id: String?) {
        #expect(Self.list.bansSession(ip: address(ip), user: user, device: device, now: 1000)?.id == id)
    }

    /// An expired ban matches nothing, and removeExpired drops it.
    @Test func expiry() {
        var list = Self.list
        #expect(list.bansAddress(address("198.51.100.1"), now: 1999)?.id == "b")
        #expect(list.bansAddress(address("198.51.100.1"), now: 2000) == nil)
        #expect(list.bansSession(ip: address("198.51.100.1"), user: "x", device: nil, now: 2000) == nil)
        #expect(list.removeExpired(now: 1999).isEmpty)
        #expect(list.removeExpired(now: 2000).map(\.id) == ["b"])
        #expect(list.count == 6 && list["b"] == nil)
        #expect(list.bansAddress(address("203.0.113.7"), now: Int(Int32.max))?.id == "a")  // 0 is never
    }

    /// Lifting a ban, and replacing one by id.
    @Test func insertAndRemove() {
        var list = Self.list
        #expect(list.remove(id: "a")?.reason == "one address")
        #expect(list.remove(id: "a") == nil)
        #expect(list.bansAddress(address("203.0.113.7"), now: 0) == nil)
        list.insert(Ban(id: "c", user: "other"))
        #expect(list.bansSession(ip: address("10.0.0.1"), user: "spammer", device: nil, now: 0) == nil)
        #expect(list.bansSession(ip: address("10.0.0.1"), user: "other", device: nil, now: 0)?.id == "c")
        #expect(list.bans.map(\.id) == ["b", "c", "d", "e", "f", "g"])
        for ban in list.bans { list.remove(id: ban.id) }
        #expect(list.count == 0 && list.bans.isEmpty)
    }

    /// Bans are written in the shape of GET /v1/bans and read back to themselves.
    @Test func jsonRoundTrip() throws {
        for ban in Self.list.bans {
            #expect(try Ban(json: ban.json) == ban)
        }
        let text = String(decoding: Self.list["e"]!.json, as: UTF8.self)
        #expect(text == #"{"id":"e","ip":"192.0.2.0/24","user":"u1","device":null,"reason":"u1 from the office only","#
            + #""expires_at":0}"#)
        let listed = String(decoding: BanList([Self.list["a"]!, Self.list["b"]!]).json(now: 2000), as: UTF8.self)
        #expect(listed == #"{"bans":[{"id":"a","ip":"203.0.113.7","user":null,"device":null,"reason":"one address","#
            + #""expires_at":0}]}"#)
    }

    /// A stored ban that cannot be read says which field is wrong.
    @Test(arguments: [
        (#"[]"#, "a ban must be a JSON object"),
        (#"{"ip":"1.2.3.4"}"#, "id must be"),
        (#"{"id":"x"}"#, "at least one of ip, user, device"),
        (#"{"id":"x","ip":"1.2.3"}"#, "ip: \"1.2.3\" is not an IPv4 or IPv6 address"),
        (#"{"id":"x","ip":"1.2.3.4","expires_at":-1}"#, "expires_at"),
        (#"{"id":"x","ip":"1.2.3.4","until":5}"#, "unknown field \"until\""),
        (#"{"id":"x","user":""}"#, "user must be"),
    ])
    func badStoredBan(_ json: String, _ message: String) {
        #expect {
            try Ban(json: Array(json.utf8))
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    /// POST /v1/bans: any of ip, user, device, with a ttl and a reason.
    @Test func banRequest() throws {
        let request = try BanRequest(body: Array(#"{"ip":"203.0.113.0/24","user":42,"ttl":600,"reason":"abuse"}"#.utf8))
        #expect(request == BanRequest(ip: range("203.0.113.0/24"), user: "42", ttl: 600, reason: "abuse"))
        let ban = request.ban(id: "id1", now: 1_700_000_000)
        let expected = Ban(
            id: "id1", ip: range("203.0.113.0/24"), user: "42", reason: "abuse", expiresAt: 1_700_000_600)
        #expect(ban == expected)
        let forever = try BanRequest(body: Array(#"{"device":"k1","ttl":0}"#.utf8))
        #expect(forever.ban(id: "x", now: 5).expiresAt == 0 && forever.reason == "")
        #expect(try BanRequest(body: Array(#"{"ip":"::1","ttl":null}"#.utf8)).ttl == nil)
    }

    /// A bad POST /v1/bans body is a 400 naming what is wrong.
    @Test(arguments: [
        ("", "body is not a JSON object"),
        ("[1]", "body must be a JSON object"),
        ("{}", "give at least one of ip, user, device"),
        (#"{"reason":"x","ttl":5}"#, "give at least one of ip, user, device"),
        (#"{"ip":"203.0.113.300"}"#, "ip: \"203.0.113.300\" is not an IPv4 or IPv6 address"),
        (#"{"ip":"203.0.113.7/24"}"#, "the range is 203.0.113.0/24"),
        (#"{"ip":7}"#, "ip must be an address or range as a string"),
        (#"{"user":"u","ttl":-1}"#, "ttl must be a whole number of seconds"),
        (#"{"user":"u","ttl":1.5}"#, "ttl must be a whole number of seconds"),
        (#"{"user":"u","ttl":"60"}"#, "ttl must be a whole number of seconds"),
        (#"{"user":"u","ttl":99999999999}"#, "ttl must be a whole number of seconds"),
        (#"{"user":"u","ip":"1.2.3.4","users":["v"]}"#, "unknown field \"users\"; the fields are ip, user, device"),
        (#"{"user":"u","reason":"a\nb"}"#, "reason must be a string"),
        (#"{"user":"u","reason":5}"#, "reason must be a string"),
        (#"{"user":true}"#, "user must be a string or integer"),
        (#"{"device":""}"#, "device must be a string or integer"),
    ])
    func badBanRequest(_ body: String, _ message: String) {
        #expect {
            try BanRequest(body: Array(body.utf8))
        } throws: { error in
            guard let error = error as? APIError else { return false }
            return error.status == 400 && error.code == "bad_request" && error.message.contains(message)
        }
    }

    /// Ban ids are 16 hex digits.
    @Test func newID() {
        var random = SplitMix64(seed: 1)
        let ids = (0..<100).map { _ in Ban.newID(using: &random) }
        #expect(Set(ids).count == 100)
        #expect(ids.allSatisfy { $0.count == 16 && $0.allSatisfy(\.isHexDigit) })
    }

    /// More than `errors` failures within the window: banned, once; fewer, or spread out, are not.
    @Test func autoBanThreshold() {
        var auto = AutoBan(errors: 3, window: 60, ttl: 600)
        let ip = address("203.0.113.50")
        for index in 0..<3 { #expect(auto.recordFailure(ip, now: UInt64(index) * second) == false) }
        #expect(auto.recordFailure(ip, now: 59 * second) == true)
        #expect(auto.recordFailure(ip, now: 59 * second) == false)  // counting again from zero
        let ban = auto.ban(ip, id: "x", now: 1_000)
        #expect(ban == Ban(id: "x", ip: range("203.0.113.50"), reason: ban.reason, expiresAt: 1_600))
        #expect(ban.reason == "automatic: more than 3 failed AUTHs or protocol errors within 60 s")
        #expect(auto.request(ip) == BanRequest(ip: range("203.0.113.50"), ttl: 600, reason: ban.reason))
    }

    /// A window ends: failures spread over time are forgiven.
    @Test func autoBanWindowEnds() {
        var auto = AutoBan(errors: 2, window: 10, ttl: 60)
        let ip = address("2001:db8::66")
        for step in 0..<10 {
            // Two failures every 10 s: never more than 2 in one window.
            #expect(auto.recordFailure(ip, now: UInt64(step) * 10 * second) == false)
            #expect(auto.recordFailure(ip, now: UInt64(step) * 10 * second + second) == false)
        }
    }

    /// Loopback is never auto-banned, and 0 errors turns it off.
    @Test func autoBanNeverLoopbackOrOff() {
        var auto = AutoBan(errors: 1, window: 60, ttl: 60)
        for _ in 0..<100 {
            #expect(auto.recordFailure(address("127.0.0.1"), now: 0) == false)
            #expect(auto.recordFailure(address("::1"), now: 0) == false)
        }
        #expect(auto.count == 0)
        var off = AutoBan(errors: 0, window: 60, ttl: 60)
        for _ in 0..<100 { #expect(off.recordFailure(address("203.0.113.1"), now: 0) == false) }
    }

    /// Addresses whose window has passed leave the table; the table never passes its capacity.
    @Test func autoBanTableBounded() {
        var auto = AutoBan(errors: 5, window: 1, ttl: 60, capacity: 100)
        for index in 0..<10_000 {
            _ = auto.recordFailure(IPAddress(v4: 0x0A00_0000 + UInt32(index)), now: 0)
            #expect(auto.count <= 100)
        }
        for step in 0..<200 { _ = auto.recordFailure(address("192.0.2.1"), now: 2 * second + UInt64(step)) }
        #expect(auto.count == 1)
    }
}
