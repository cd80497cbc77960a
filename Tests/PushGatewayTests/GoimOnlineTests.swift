// goim compatibility (SPEC §3 "goim compatibility", §2 HEARTBEAT_REPLY; issues 4 and 10): room counts in
// HEARTBEAT_REPLY, /goim/online/{total,room,top}, /goim/nodes/{weighted,instances}, and goim pushes and counts
// across two instances sharing one Redis.
import Foundation
import Testing

@Suite("goim compatibility: online counts and instances", .serialized, .timeLimit(.minutes(1)))
struct GoimOnlineTests {
    @Test("HEARTBEAT_REPLY carries the room count; /goim/online/total, /goim/online/room and /goim/nodes/weighted answer goim's shapes")
    func goimOnlineAndNodes() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let c1 = try await WireClient.connect(gateway)
        try await c1.goimAuth(mid: 123, key: "k1", room: "live://1000")
        let c2 = try await WireClient.connect(gateway)
        try await c2.goimAuth(mid: 456, key: "k2", room: "live://1000")
        let c3 = try await WireClient.connect(gateway)
        try await c3.goimAuth(mid: 789, key: "k3", room: nil)

        #expect(try await c1.heartbeat(seq: 11) == 2, "room live://1000 holds 2")
        #expect(try await c2.heartbeat(seq: 12) == 2, "room live://1000 holds 2")
        #expect(try await c3.heartbeat(seq: 13) == 0, "no room: 0")

        var total: HTTPResponse?
        let counted = try await eventually(timeout: 5) {
            total = try await gateway.http(goimRequest("GET", "/goim/online/total"))
            return number((total?.json?["data"] as? [String: Any])?["conn_count"]) == 3
        }
        #expect(counted, "GET /goim/online/total within 5 s: expected data.conn_count 3, last \(String(describing: total))")
        if let total { _ = expectGoimOK(total, "online/total") }

        // goim's OnlineRoom: `res[room] = roomCount[EncodeRoomKey(typ, room)]`, keyed by the room ids as given.
        let room = try await gateway.http(goimRequest("GET", "/goim/online/room?type=live&rooms=1000&rooms=1001"))
        let roomData = expectGoimOK(room, "online/room") as? [String: Any]
        #expect(
            roomData.map { $0.count == 2 && number($0["1000"]) == 2 && number($0["1001"]) == 0 } == true,
            "expected data {\"1000\": 2, \"1001\": 0}: \(room)")

        let weighted = try await gateway.http(goimRequest("GET", "/goim/nodes/weighted"))
        let data = expectGoimOK(weighted, "nodes/weighted") as? [String: Any]
        let nodes = data?["nodes"] as? [String]
        #expect(nodes?.isEmpty == false, "data.nodes: \(weighted)")
        #expect(nodes?.allSatisfy { $0.hasSuffix(":\(gateway.tcpPort)") } == true, "data.nodes name the TCP listener: \(weighted)")
        #expect(number(data?["tcp_port"]) == Double(gateway.tcpPort), "data.tcp_port: \(weighted)")
        #expect(number(data?["heartbeat"]) == 240 && number(data?["heartbeat_max"]) == 1, "heartbeat settings: \(weighted)")
        // goim's NodesReply fields are `omitempty`: no domain, no WebSocket listener here, no WSS listener.
        #expect(data?["domain"] == nil && data?["ws_port"] == nil && data?["wss_port"] == nil, "omitted fields: \(weighted)")
        // goim's logic-example.toml backoff (the jitter is a fraction of the delay).
        let backoff = data?["backoff"] as? [String: Any]
        #expect(
            number(backoff?["max_delay"]) == 300 && number(backoff?["base_delay"]) == 3
                && number(backoff?["factor"]) == 1.8 && number(backoff?["jitter"]) == 0.3,
            "backoff: \(weighted)")

        // goim's NodesInstances: discovery's naming.Instance, one per node.
        let instances = try await gateway.http(goimRequest("GET", "/goim/nodes/instances"))
        let list = try #require(expectGoimOK(instances, "nodes/instances") as? [[String: Any]], "\(instances)")
        #expect(list.count == 1, "one worker, one instance: \(instances)")
        let instance = try #require(list.first)
        #expect(
            Set(instance.keys) == ["region", "zone", "env", "appid", "hostname", "addrs", "version", "latest_timestamp", "metadata"],
            "instance fields: \(instance)")
        #expect(instance["appid"] as? String == "goim.comet" && (instance["hostname"] as? String)?.isEmpty == false, "\(instance)")
        #expect(instance["addrs"] as? [String] == ["tcp://127.0.0.1:\(gateway.tcpPort)"], "addrs: \(instance)")
        #expect((number(instance["latest_timestamp"]) ?? 0) > 1e18, "latest_timestamp in nanoseconds: \(instance)")
        let metadata = try #require(instance["metadata"] as? [String: String], "metadata values are strings: \(instance)")
        #expect(metadata["conn_count"] == "3" && metadata["addrs"] == "127.0.0.1", "metadata: \(metadata)")
        #expect(metadata["weight"].flatMap { Int($0) } != nil && metadata["offline"] == "false", "metadata: \(metadata)")
        #expect(metadata["ip_count"].flatMap { Int($0) } != nil, "metadata: \(metadata)")

        // goim's OnlineTop: {room_id (the room without its type), count}, biggest first, `limit` of them.
        let c4 = try await WireClient.connect(gateway)
        try await c4.goimAuth(mid: 790, key: "k4", room: "live://1002")
        let c5 = try await WireClient.connect(gateway)
        try await c5.goimAuth(mid: 791, key: "k5", room: "game://1000")
        let top = try await gateway.http(goimRequest("GET", "/goim/online/top?type=live&limit=5"))
        let tops = (expectGoimOK(top, "online/top") as? [[String: Any]]) ?? []
        #expect(
            tops.map { "\($0["room_id"] as? String ?? "?")=\(Int(number($0["count"]) ?? -1))" } == ["1000=2", "1002=1"],
            "online/top type=live: \(top)")
        let one = try await gateway.http(goimRequest("GET", "/goim/online/top?type=live&limit=1"))
        #expect(((expectGoimOK(one, "online/top limit 1") as? [[String: Any]]) ?? []).count == 1, "limit=1: \(one)")
        let none = try await gateway.http(goimRequest("GET", "/goim/online/top?type=chat&limit=3"))
        #expect((expectGoimOK(none, "online/top no rooms") as? [Any])?.isEmpty == true, "no chat rooms: [] \(none)")
    }

    @Test("Across two instances on one Redis: goim key, mid and room pushes on instance 1 reach a client on instance 2; online counts include it")
    func goimAcrossInstances() async throws {
        let cluster = try await SharedRedisCluster.start(instances: 2)
        defer { cluster.stop() }
        let (g1, g2) = (cluster.gateways[0], cluster.gateways[1])
        let near = try await WireClient.connect(g1)
        try await near.goimAuth(mid: 100, key: "near", room: "live://2000")
        let far = try await WireClient.connect(g2)
        try await far.goimAuth(mid: 321, key: "far", room: "live://2000")

        let keys = try await g1.http(goimRequest("POST", "/goim/push/keys?operation=1000&keys=far", body: Array("by key".utf8)))
        _ = expectGoimOK(keys, "push/keys on instance 1")
        try await far.expectMessage(op: 1000, body: Array("by key".utf8), "goim key push on instance 1 to a key on instance 2")

        let mids = try await g1.http(goimRequest("POST", "/goim/push/mids?operation=1001&mids=321", body: Array("by mid".utf8)))
        _ = expectGoimOK(mids, "push/mids on instance 1")
        try await far.expectMessage(op: 1001, body: Array("by mid".utf8), "goim mid push on instance 1 to mid 321 on instance 2")

        let room = try await g1.http(goimRequest("POST", "/goim/push/room?operation=1002&type=live&room=2000", body: Array("room".utf8)))
        _ = expectGoimOK(room, "push/room on instance 1")
        for (name, client) in [("near", near), ("far", far)] {
            let inner = try await client.readRoomMessages(1)
            #expect(inner.map(\.op) == [1002] && inner.first?.body == Array("room".utf8), "\(name): \(inner)")
        }
        try await near.expectNothingPending("near got only the room message")
        try await far.expectNothingPending("far got only what was addressed to it")

        var online: HTTPResponse?
        let roomCounted = try await eventually(timeout: 5) {
            online = try await g1.http(goimRequest("GET", "/goim/online/room?type=live&rooms=2000"))
            return number((online?.json?["data"] as? [String: Any])?["2000"]) == 2
        }
        #expect(roomCounted, "GET /goim/online/room on instance 1 within 5 s: expected {\"2000\": 2}, last \(String(describing: online))")

        // online/top counts every node's rooms: live://3000 has members on instance 2 only.
        let other1 = try await WireClient.connect(g2)
        try await other1.goimAuth(mid: 322, key: "far2", room: "live://3000")
        let other2 = try await WireClient.connect(g2)
        try await other2.goimAuth(mid: 323, key: "far3", room: "live://3000")
        let other3 = try await WireClient.connect(g2)
        try await other3.goimAuth(mid: 324, key: "far4", room: "live://3000")
        var top: HTTPResponse?
        var tops: [String] = []
        let topCounted = try await eventually(timeout: 8) {
            top = try await g1.http(goimRequest("GET", "/goim/online/top?type=live&limit=10"))
            tops = ((top?.json?["data"] as? [[String: Any]]) ?? []).map {
                "\($0["room_id"] as? String ?? "?")=\(Int(number($0["count"]) ?? -1))"
            }
            return tops == ["3000=3", "2000=2"]
        }
        #expect(topCounted, "GET /goim/online/top on instance 1 within 8 s: expected [3000=3, 2000=2], last \(tops) \(String(describing: top))")
        if let top { _ = expectGoimOK(top, "online/top across instances") }
        let instances = try await g1.http(goimRequest("GET", "/goim/nodes/instances"))
        let hosts = ((expectGoimOK(instances, "nodes/instances") as? [[String: Any]]) ?? []).compactMap { $0["addrs"] as? [String] }
        #expect(
            Set(hosts.flatMap { $0 }) == ["tcp://127.0.0.1:\(g1.tcpPort)", "tcp://127.0.0.1:\(g2.tcpPort)"],
            "nodes/instances lists both instances: \(instances)")
        var total: HTTPResponse?
        let totalCounted = try await eventually(timeout: 5) {
            total = try await g2.http(goimRequest("GET", "/goim/online/total"))
            return number((total?.json?["data"] as? [String: Any])?["conn_count"]) == 5
        }
        #expect(totalCounted, "GET /goim/online/total on instance 2 within 5 s: expected conn_count 5, last \(String(describing: total))")
        let weighted = try await g1.http(goimRequest("GET", "/goim/nodes/weighted"))
        let nodes = ((expectGoimOK(weighted, "nodes/weighted") as? [String: Any])?["nodes"] as? [String]) ?? []
        #expect(
            Set(nodes) == ["127.0.0.1:\(g1.tcpPort)", "127.0.0.1:\(g2.tcpPort)"],
            "nodes/weighted lists both instances' TCP addresses: \(weighted)")

        // The room count in HEARTBEAT_REPLY spans nodes (refreshed every few seconds).
        var last: UInt32 = 0
        var seq: UInt32 = 100
        let spans = try await eventually(timeout: 10) {
            seq += 1
            last = try await far.heartbeat(seq: seq)
            return last == 2
        }
        #expect(spans, "HEARTBEAT_REPLY on instance 2 within 10 s: expected room count 2 (one member per instance), last \(last)")
    }
}
