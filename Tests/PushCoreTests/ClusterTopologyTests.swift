// Redis Cluster's slot map and redirections read from replies, without a cluster (SPEC §9). The same mapping is
// checked against a real local cluster in PushGatewayTests (RedisClusterTests).
import Testing

@testable import PushCore

private func node(_ host: String, _ port: Int64, _ id: String = "id") -> RedisValue {
    .array([.string(Array(host.utf8)), .integer(port), .string(Array(id.utf8))])
}

@Suite struct ClusterTopologyTests {
    /// The reply of a three-master cluster with one replica each, as `CLUSTER SLOTS` gives it (ranges in any order,
    /// one master may serve several ranges).
    static let threeMasters: RedisValue = .array([
        .array([.integer(5461), .integer(10922), node("127.0.0.1", 7001), node("127.0.0.1", 7004)]),
        .array([.integer(0), .integer(5460), node("127.0.0.1", 7000), node("127.0.0.1", 7003)]),
        .array([.integer(10923), .integer(16000), node("", 7002), node("127.0.0.1", 7005)]),
        .array([.integer(16001), .integer(16383), node("127.0.0.1", 7000)]),
    ])

    @Test func slotMapFromClusterSlots() throws {
        let map = try ClusterSlotMap(slotsReply: Self.threeMasters, askedHost: "10.0.0.9")
        let a = ClusterNode(host: "127.0.0.1", port: 7000)
        let b = ClusterNode(host: "127.0.0.1", port: 7001)
        // An empty host is the one asked.
        let c = ClusterNode(host: "10.0.0.9", port: 7002)
        #expect(map.masters == [b, a, c])
        #expect(map.master(of: 0) == a && map.master(of: 5460) == a && map.master(of: 5461) == b)
        #expect(map.master(of: 10922) == b && map.master(of: 10923) == c && map.master(of: 16000) == c)
        #expect(map.master(of: 16001) == a && map.master(of: 16383) == a)
        #expect(map.unservedSlots == 0)
        #expect(map.replicas[a] == [ClusterNode(host: "127.0.0.1", port: 7003)])
        // A user's keys go where their tag's slot is: "{u:42}" hashes to one slot for every key of the user.
        let slot = RedisSlot.of(key: "pg:{u:42}:inbox")
        #expect(map.master(ofKey: "pg:{u:42}:meta") == map.master(of: slot))
    }

    @Test func slotsNobodyServesAndMoves() throws {
        var map = try ClusterSlotMap(
            slotsReply: .array([.array([.integer(0), .integer(99), node("127.0.0.1", 7000)])]), askedHost: "x")
        #expect(map.unservedSlots == 16384 - 100 && map.master(of: 100) == nil)
        let elsewhere = ClusterNode(host: "127.0.0.1", port: 7009)
        map.move(slot: 100, to: elsewhere)
        #expect(map.master(of: 100) == elsewhere && map.masters.count == 2 && map.unservedSlots == 16384 - 101)
        #expect(ClusterSlotMap().unservedSlots == 16384)
    }

    @Test(arguments: [
        RedisValue.status("OK"),
        .array([.array([.integer(0), .integer(16384), node("h", 1)])]),  // past the last slot
        .array([.array([.integer(9), .integer(3), node("h", 1)])]),  // start after end
        .array([.array([.integer(0), .integer(3)])]),  // no master
        .array([.array([.integer(0), .integer(3), .array([.string(Array("h".utf8)), .integer(0)])])]),  // port 0
    ])
    func malformedSlotsReplies(reply: RedisValue) {
        #expect(throws: ClusterSlotMap.ParseError.self) { try ClusterSlotMap(slotsReply: reply, askedHost: "h") }
    }

    @Test func anErrorReplyIsReportedAsSuch() {
        #expect(throws: ClusterSlotMap.ParseError.error("ERR This instance has cluster support disabled")) {
            try ClusterSlotMap(slotsReply: .error("ERR This instance has cluster support disabled"), askedHost: "h")
        }
    }

    @Test func redirections() {
        let there = ClusterNode(host: "127.0.0.1", port: 6381)
        #expect(ClusterRedirect(error: "MOVED 3999 127.0.0.1:6381", askedHost: "a") == .moved(slot: 3999, to: there))
        #expect(ClusterRedirect(error: "ASK 3999 127.0.0.1:6381", askedHost: "a") == .ask(slot: 3999, to: there))
        #expect(ClusterRedirect(error: "MOVED 1 :6381", askedHost: "127.0.0.1") == .moved(slot: 1, to: there))
        let v6 = ClusterNode(host: "::1", port: 7000)
        #expect(ClusterRedirect(error: "MOVED 7 ::1:7000", askedHost: "a") == .moved(slot: 7, to: v6))
        #expect(ClusterRedirect(error: "ASK 7 [::1]:7000", askedHost: "a") == .ask(slot: 7, to: v6))
        #expect(v6.description == "[::1]:7000" && there.description == "127.0.0.1:6381")
        #expect(ClusterRedirect(error: "TRYAGAIN Multiple keys request during rehashing of slot", askedHost: "a") == .retry)
        #expect(ClusterRedirect(error: "CLUSTERDOWN The cluster is down", askedHost: "a") == .retry)
        // The command's own errors are not redirections.
        for error in ["ERR wrong number of arguments", "NOSCRIPT No matching script", "MOVED 16384 h:1", "MOVED x h:1",
            "MOVED 1 h", "WRONGTYPE Operation against a key"]
        {
            #expect(ClusterRedirect(error: error, askedHost: "a") == nil, "\(error)")
        }
    }

    @Test func seeds() {
        #expect(
            ClusterSeeds.parse("127.0.0.1:7000, 127.0.0.1:7001,127.0.0.1:7000")
                == .success([ClusterNode(host: "127.0.0.1", port: 7000), ClusterNode(host: "127.0.0.1", port: 7001)]))
        #expect(ClusterSeeds.parse("127.0.0.1:7000,nonsense") == .failure(ClusterSeedError(entry: "nonsense")))
        #expect(ClusterSeeds.parse(":7000") == .failure(ClusterSeedError(entry: ":7000")))
        #expect(ClusterSeeds.parse("h:0") == .failure(ClusterSeedError(entry: "h:0")))
        #expect(ClusterSeeds.parse(" ") == .failure(ClusterSeedError(entry: "")))
    }
}
