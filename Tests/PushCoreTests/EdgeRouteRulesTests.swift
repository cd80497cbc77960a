import Testing

@testable import PushCore

private func rules(_ json: String) throws -> RouteRules { try RouteRules(body: Array(json.utf8)) }
private let uids = (0..<10_000).map { "user-\($0)" }

@Suite("Edge: route rules")
struct EdgeRouteRulesTests {
    /// CRC-32 is zlib's, so a backend can compute the same buckets.
    @Test func crc32() {
        #expect(CRC32.checksum("123456789".utf8) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(CRC32.checksum("The quick brown fox jumps over the lazy dog".utf8) == 0x414F_A339)
        #expect(RouteRules.bucket("123456789") == 62)  // 3421780262 mod 100
    }

    /// An empty object is the defaults: everyone gets a long connection, no gray group.
    @Test func defaults() throws {
        let empty = try rules("{}")
        #expect(empty == RouteRules())
        #expect(empty.longConnection && empty.percent == 100 && empty.gray == nil)
        #expect(empty.allow.isEmpty && empty.deny.isEmpty)
        for uid in uids.prefix(100) { #expect(empty.decide(uid: uid, device: nil, version: nil) == (true, nil)) }
        #expect(try rules(#"{"gray":null,"allow":null}"#) == RouteRules())
    }

    /// The SPEC's example reads, and writes back to the same rules.
    @Test func jsonRoundTrip() throws {
        let text = #"{"long_connection":true,"percent":100,"gray":{"group":"gray","percent":5},"#
            + #""allow":[{"user":"u1"},{"device":"k1"},{"version":"2.0.*"}],"deny":[{"user":42}]}"#
        let read = try rules(text)
        #expect(read.gray == RouteRules.Gray(group: "gray", percent: 5))
        #expect(read.allow == [.user("u1"), .device("k1"), .version("2.0.*")])
        #expect(read.deny == [.user("42")])
        #expect(try RouteRules(body: read.json) == read)
        #expect(String(decoding: RouteRules().json, as: UTF8.self)
            == #"{"long_connection":true,"percent":100,"gray":null,"allow":[],"deny":[]}"#)
    }

    /// Deny wins over allow; allow wins over long_connection false and over percent.
    @Test func denyThenAllowThenRest() throws {
        let rules = RouteRules(
            longConnection: false, percent: 0, allow: [.user("vip"), .user("both"), .device("tester-phone")],
            deny: [.user("both"), .version("0.9")])
        #expect(rules.decide(uid: "vip", device: nil, version: "1.0") == (true, nil))
        #expect(rules.decide(uid: "both", device: nil, version: nil) == (false, nil))
        #expect(rules.decide(uid: "vip", device: nil, version: "0.9") == (false, nil))
        #expect(rules.decide(uid: "anyone", device: "tester-phone", version: nil) == (true, nil))
        #expect(rules.decide(uid: "anyone", device: nil, version: nil) == (false, nil))
    }

    /// long_connection false: everyone not allowed long-polls.
    @Test func longConnectionOff() {
        let rules = RouteRules(longConnection: false)
        #expect(uids.allSatisfy { rules.decide(uid: $0, device: nil, version: nil) == (false, nil) })
    }

    /// percent keeps about that share of users, by a bucket that does not change between calls or nodes, and
    /// raising it only adds users.
    @Test(arguments: [0, 1, 10, 30, 50, 99, 100])
    func percent(_ share: Int) {
        let rules = RouteRules(percent: share)
        let inside = uids.filter { rules.decide(uid: $0, device: nil, version: nil).longConnection }
        #expect(abs(Double(inside.count) / Double(uids.count) * 100 - Double(share)) < 2)
        #expect(inside.allSatisfy { RouteRules.bucket($0) < share })
        let more = RouteRules(percent: min(100, share + 10))
        #expect(inside.allSatisfy { more.decide(uid: $0, device: nil, version: nil).longConnection })
    }

    /// Users inside gray.percent get the gray group; the share is of users with a long connection.
    @Test(arguments: [0, 5, 50, 100])
    func gray(_ share: Int) {
        let rules = RouteRules(percent: 100, gray: .init(group: "canary", percent: share))
        let gray = uids.filter { rules.decide(uid: $0, device: nil, version: nil) == (true, "canary") }
        #expect(abs(Double(gray.count) / Double(uids.count) * 100 - Double(share)) < 2)
        #expect(gray.allSatisfy { RouteRules.grayBucket($0) < share })
    }

    /// The gray draw is not the rollout's: with half the users on long connections, the gray ones are spread over
    /// that half rather than being its first buckets. Long-polling users are never gray.
    @Test func grayIsAnotherDraw() {
        let rules = RouteRules(percent: 50, gray: .init(group: "canary", percent: 10))
        let decisions = uids.map { rules.decide(uid: $0, device: nil, version: nil) }
        #expect(!decisions.contains { !$0.longConnection && $0.group != nil })
        let gray = zip(uids, decisions).filter { $0.1.group == "canary" }.map(\.0)
        #expect(abs(Double(gray.count) / Double(uids.count) * 100 - 5) < 1.5)
        #expect(gray.contains { RouteRules.bucket($0) >= 25 } && gray.contains { RouteRules.bucket($0) < 10 })
    }

    /// Versions match exactly, or by prefix with a trailing `*`; no version matches no version rule.
    @Test(arguments: [
        ("1.2.3", false), ("1.2.10", false), ("1.2", true), ("1.3.0", true), ("2.0", false), ("2.0.1", true),
        (nil, true),
    ] as [(String?, Bool)])
    func versions(_ version: String?, _ longConnection: Bool) {
        let rules = RouteRules(deny: [.version("1.2.*"), .version("2.0")])
        #expect(rules.decide(uid: "u", device: nil, version: version).longConnection == longConnection)
    }

    /// A bad body is a 400 naming the member.
    @Test(arguments: [
        ("", "body is not a JSON object"),
        ("[]", "body must be a JSON object"),
        (#"{"percent":101}"#, "percent must be a whole number from 0 to 100"),
        (#"{"percent":-1}"#, "percent must be a whole number from 0 to 100"),
        (#"{"percent":5.5}"#, "percent must be a whole number from 0 to 100"),
        (#"{"percent":"50"}"#, "percent must be a whole number from 0 to 100"),
        (#"{"long_connection":"yes"}"#, "long_connection must be true or false"),
        (#"{"gray":5}"#, "gray must be an object"),
        (#"{"gray":{"percent":5}}"#, "gray.group must be"),
        (#"{"gray":{"group":"","percent":5}}"#, "gray.group must be"),
        (#"{"gray":{"group":"g"}}"#, "gray.percent is required"),
        (#"{"gray":{"group":"g","percent":200}}"#, "gray.percent must be a whole number"),
        (#"{"gray":{"group":"g","percent":5,"nodes":3}}"#, "unknown field \"nodes\" in gray"),
        (#"{"allow":{"user":"u"}}"#, "allow must be an array of objects"),
        (#"{"allow":["u"]}"#, "allow[0] is not"),
        (#"{"deny":[{"user":"u"},{"user":"v","device":"k"}]}"#, "deny[1] is not"),
        (#"{"deny":[{"uid":"u"}]}"#, "deny[0] has \"uid\""),
        (#"{"allow":[{"user":""}]}"#, "allow[0].user must be a non-empty string"),
        (#"{"allow":[{"version":true}]}"#, "allow[0].version must be"),
        (#"{"percentage":5}"#, "unknown field \"percentage\" in the rules"),
    ])
    func badRules(_ body: String, _ message: String) {
        #expect {
            try rules(body)
        } throws: { error in
            guard let error = error as? APIError else { return false }
            return error.status == 400 && error.message.contains(message)
        }
    }
}
