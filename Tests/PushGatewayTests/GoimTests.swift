// goim compatibility (SPEC §3 "goim compatibility", §2 RAW and HEARTBEAT_REPLY; issues 4 and 10): goim's AUTH body,
// CHANGE_ROOM and SEND_MSG frames, its logic HTTP API — /goim/push/{keys,mids,room,all} with the raw message as the
// body, /goim/online/{total,room,top}, /goim/nodes/{weighted,instances} and goim's error replies — as goim's tools
// send them (`curl -d`: a form content type), on one gateway and across two instances sharing one Redis. Room
// pushes reach a TCP client as bare frames and a WebSocket client as RAW (op 9) batches, as goim's comet writes
// them (`Proto.WriteTCP` writes a RAW's body unwrapped, `Proto.WriteWebsocket` the whole frame).
import Foundation
import Testing

/// A goim API request: `body` raw bytes sent as `curl -d` sends them (Content-Type
/// application/x-www-form-urlencoded).
private func goimRequest(_ method: String, _ path: String, body: [UInt8]? = nil, apiKey: String? = nil) -> [UInt8] {
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
    if let apiKey { head += "Authorization: Bearer \(apiKey)\r\n" }
    if let body {
        head += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.count)\r\n"
    }
    return Array((head + "\r\n").utf8) + (body ?? [])
}

/// A goim reply: HTTP 200, `code` 0, `message` ""; returns `data` (nil when absent).
private func expectGoimOK(
    _ response: HTTPResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) -> Any? {
    #expect(response.status == 200, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(number(response.json?["code"]) == 0, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(response.json?["message"] as? String == "", "\(what): \(response)", sourceLocation: sourceLocation)
    return response.json?["data"]
}

/// A goim error reply: HTTP `status`, body exactly `{"code":<code>,"message":"…"}` (goim's `errors(c, code, msg)`
/// in internal/logic/http/result.go), with no /v1 `error` envelope.
private func expectGoimError(
    _ response: HTTPResponse, status: Int, code: Double = -400, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(response.status == status, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(response.header("content-type") == "application/json", "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(number(response.json?["code"]) == code, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect((response.json?["message"] as? String)?.isEmpty == false, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(response.json.map { Set($0.keys) } == ["code", "message"], "\(what): \(response)", sourceLocation: sourceLocation)
}

/// goim's AUTH body, field for field.
private func goimAuthText(mid: Int, key: String, room: String?, accepts: [Int]) -> String {
    authBody(mid: .int(mid), key: key, roomID: room, accepts: accepts, platform: "web")
}

extension WireClient {
    /// AUTH with goim's body; checks AUTH_REPLY code 0 and the key echoed.
    fileprivate func goimAuth(mid: Int, key: String, room: String?, accepts: [Int] = [1000, 1001, 1002]) async throws {
        try send(op: Op.auth, seq: 1, text: goimAuthText(mid: mid, key: key, room: room, accepts: accepts))
        let reply = try await readFrame()
        #expect(reply?.op == Op.authReply && reply?.seq == 1, "AUTH_REPLY for goim mid \(mid): \(String(describing: reply))")
        #expect(number(reply?.json?["code"]) == 0, "\(String(describing: reply))")
        #expect(reply?.json?["key"] as? String == key, "\(String(describing: reply))")
    }

    /// Reads `count` room messages on TCP: bare frames, as goim's comet writes a RAW's body (`Proto.WriteTCP`).
    /// Throws on a RAW wrapper or any other frame.
    fileprivate func readRoomMessages(_ count: Int, timeout: Double = 5) async throws -> [Frame] {
        var frames: [Frame] = []
        while frames.count < count {
            guard let frame = try await readFrame(timeout: timeout) else {
                throw TestError("closed after \(frames.count) of \(count) room messages")
            }
            guard frame.op >= 1000, frame.seq == 0 else {
                throw TestError("expected a bare room message (op ≥ 1000, seq 0) on TCP, got \(frame) after \(frames.count)")
            }
            frames.append(frame)
        }
        return frames
    }
}

extension WebSocketClient {
    /// Reads RAW (op 9) frames, one per binary message, until `count` inner frames have come; returns the inner
    /// frames. Throws on any other frame.
    fileprivate func readRoomBatches(_ count: Int, timeout: Double = 5) async throws -> (batches: Int, inner: [Frame]) {
        var inner: [Frame] = []
        var batches = 0
        while inner.count < count {
            guard let frame = try await readFrame(timeout: timeout) else {
                throw TestError("closed after \(inner.count) of \(count) room messages")
            }
            guard frame.op == Op.raw, frame.seq == 0 else {
                throw TestError("expected a RAW (op 9, seq 0) room batch, got \(frame) after \(inner.count) room messages")
            }
            guard let frames = splitBatch(frame.body), !frames.isEmpty else {
                throw TestError("RAW body is not whole frames: \(frame.body.prefix(64))")
            }
            batches += 1
            inner += frames
        }
        return (batches, inner)
    }
}

@Suite("goim compatibility", .serialized, .timeLimit(.minutes(1)))
struct GoimTests {
    @Test("goim's AUTH body is accepted verbatim: {mid, key, room_id, platform, accepts}")
    func goimAuthBody() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try client.send(
            op: Op.auth, seq: 1,
            text: #"{"mid":123,"key":"k1","room_id":"live://1000","platform":"web","accepts":[1000,1001,1002]}"#)
        let reply = try #require(try await client.readFrame())
        #expect(reply.op == Op.authReply && reply.seq == 1, "\(reply)")
        #expect(number(reply.json?["code"]) == 0 && reply.json?["key"] as? String == "k1", "\(reply)")
        #expect(try await client.heartbeat(seq: 2) == 1, "HEARTBEAT_REPLY: the room live://1000 holds this client")
        #expect(try await gateway.deviceKeys("123") == ["k1"], "mid 123 is user \"123\"")
    }

    @Test("/goim/push/keys, /mids, /all: code 0 and frames whose body is the raw request body; accepts filter applies")
    func goimPushes() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let c1 = try await WireClient.connect(gateway)
        try await c1.goimAuth(mid: 123, key: "k1", room: "live://1000")
        let c2 = try await WireClient.connect(gateway)
        try await c2.goimAuth(mid: 456, key: "k2", room: "live://1000")
        let c3 = try await WireClient.connect(gateway)
        try await c3.goimAuth(mid: 789, key: "k3", room: nil, accepts: [1000])

        // Binary bytes, not JSON: delivered unchanged.
        let raw: [UInt8] = Array("hello k1 ".utf8) + [0x00, 0xff, 0x7b, 0x0d, 0x0a, 0x80]
        let keys = try await gateway.http(goimRequest("POST", "/goim/push/keys?operation=1000&keys=k1", body: raw))
        _ = expectGoimOK(keys, "push/keys")
        try await c1.expectMessage(op: 1000, body: raw, "push/keys to k1")

        let mids = try await gateway.http(goimRequest("POST", "/goim/push/mids?operation=1001&mids=123", body: Array("mid message".utf8)))
        _ = expectGoimOK(mids, "push/mids")
        try await c1.expectMessage(op: 1001, body: Array("mid message".utf8), "push/mids to 123")

        // goim binds `mids` as a repeated query parameter.
        let two = try await gateway.http(goimRequest("POST", "/goim/push/mids?operation=1001&mids=123&mids=456", body: Array("both".utf8)))
        _ = expectGoimOK(two, "push/mids two mids")
        try await c1.expectMessage(op: 1001, body: Array("both".utf8), "mids=123&mids=456, 123")
        try await c2.expectMessage(op: 1001, body: Array("both".utf8), "mids=123&mids=456, 456")

        let all = try await gateway.http(goimRequest("POST", "/goim/push/all?operation=1000", body: Array("to everyone".utf8)))
        _ = expectGoimOK(all, "push/all")
        for (name, client) in [("k1", c1), ("k2", c2), ("k3", c3)] {
            try await client.expectMessage(op: 1000, body: Array("to everyone".utf8), "push/all, \(name)")
        }
        // c3 accepts 1000 only: an all-push of op 1001 skips it.
        let filtered = try await gateway.http(goimRequest("POST", "/goim/push/all?operation=1001", body: Array("1001".utf8)))
        _ = expectGoimOK(filtered, "push/all op 1001")
        try await c1.expectMessage(op: 1001, body: Array("1001".utf8), "push/all 1001, k1")
        try await c2.expectMessage(op: 1001, body: Array("1001".utf8), "push/all 1001, k2")
        for (name, client) in [("k1", c1), ("k2", c2), ("k3", c3)] {
            try await client.expectNothingPending("\(name) after the goim pushes")
        }
    }

    @Test("/goim/push/room: TCP members get the bare frames (op 1002, raw body) and WebSocket members RAW (op 9) batches, in order; others nothing")
    func goimRoomPush() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let c1 = try await WireClient.connect(gateway)
        try await c1.goimAuth(mid: 123, key: "k1", room: "live://1000")
        let c2 = try await WireClient.connect(gateway)
        try await c2.goimAuth(mid: 456, key: "k2", room: "live://1000")
        let outsider = try await WireClient.connect(gateway)
        try await outsider.goimAuth(mid: 789, key: "k3", room: "live://1001")
        let browser = try await WebSocketClient.connect(gateway)
        try await browser.auth(mid: 321, key: "w1", roomID: "live://1000", accepts: [1002])

        let one = try await gateway.http(goimRequest("POST", "/goim/push/room?operation=1002&type=live&room=1000", body: Array("room msg".utf8)))
        _ = expectGoimOK(one, "push/room")
        for (name, client) in [("k1", c1), ("k2", c2)] {
            let frames = try await client.readRoomMessages(1)
            #expect(frames.count == 1, "\(name): \(frames)")
            #expect(frames.first?.op == 1002 && frames.first?.body == Array("room msg".utf8), "\(name): \(frames)")
        }
        let first = try await browser.readRoomBatches(1)
        #expect(first.inner.map(\.op) == [1002] && first.inner.first?.body == Array("room msg".utf8), "w1: \(first)")

        // Five room messages pipelined in one write: every one delivered once, in order; on TCP as five bare frames
        // (goim's TCP client counts frames of the room's op), on WebSocket inside RAW batches.
        let http = try await HTTPConnection.connect(gateway)
        defer { http.close() }
        let bodies = (0..<5).map { Array("m\($0)".utf8) }
        try http.send(bodies.map { goimRequest("POST", "/goim/push/room?operation=1002&type=live&room=1000", body: $0) })
        for i in 0..<5 {
            let response = try #require(try await http.readResponse())
            _ = expectGoimOK(response, "pipelined push/room \(i)")
        }
        for (name, client) in [("k1", c1), ("k2", c2)] {
            let frames = try await client.readRoomMessages(5)
            #expect(frames.map(\.body) == bodies, "\(name): \(frames)")
            #expect(frames.allSatisfy { $0.op == 1002 && $0.headerLength == 16 && $0.version == 1 }, "\(name): \(frames)")
            try await client.expectNothingPending("\(name) after the room messages")
        }
        let rest = try await browser.readRoomBatches(5)
        #expect(rest.inner.map(\.body) == bodies && rest.inner.allSatisfy { $0.op == 1002 }, "w1: \(rest)")
        #expect(rest.batches <= 5, "w1: \(rest.batches) RAW batches")
        #expect(try await browser.heartbeat(seq: 77) == 3, "w1: nothing else queued; the room holds 3")
        try await outsider.expectNothingPending("a client in live://1001 gets nothing for live://1000")
    }

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

    @Test("goim pushes of control operations (DISCONNECT, ERROR, AUTH_REPLY, HEARTBEAT_REPLY, …) are refused with goim's error; nothing reaches the client")
    func goimControlOperationsRefused() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.goimAuth(mid: 77, key: "k77", room: "live://1")
        for op in [6, 28, 8, 3, 9, 13, 0, 999] {
            let body = Array(#"{"reason":"forged","reconnect":false,"after_ms":0}"#.utf8)
            for path in [
                "/goim/push/mids?operation=\(op)&mids=77", "/goim/push/keys?operation=\(op)&keys=k77",
                "/goim/push/room?operation=\(op)&type=live&room=1", "/goim/push/all?operation=\(op)",
            ] {
                let response = try await gateway.http(goimRequest("POST", path, body: body))
                expectGoimError(response, status: 400, "POST \(path)")
                #expect(response.json?["message"] as? String == "operation must be an application operation, 1000 or above", "\(response)")
            }
        }
        try await client.expectNothingPending("no control frame was delivered")
        // Application operations still go through.
        let ok = try await gateway.http(goimRequest("POST", "/goim/push/mids?operation=1000&mids=77", body: Array("hi".utf8)))
        _ = expectGoimOK(ok, "push/mids op 1000")
        try await client.expectMessage(op: 1000, body: Array("hi".utf8), "op 1000 to mid 77")
    }

    @Test("goim paths answer goim's {code, message} for every error: bad or missing parameters, wrong method, unknown path, body too large, API key, Redis down")
    func goimErrorReplies() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_MAX_BODY": "1024"])
        defer { gateway.stop() }
        let cases: [(String, String, Int)] = [
            ("POST", "/goim/push/mids?operation=1000", 400),
            ("POST", "/goim/push/mids?operation=1000&mids=", 400),
            ("POST", "/goim/push/mids?operation=1000&mids=a%01b", 400),
            ("POST", "/goim/push/mids?mids=1", 400),
            ("POST", "/goim/push/mids?operation=abc&mids=1", 400),
            ("POST", "/goim/push/mids?operation=-1000&mids=1", 400),
            ("POST", "/goim/push/keys?operation=1000", 400),
            ("POST", "/goim/push/keys?operation=1000&keys=a%0Ab", 400),
            ("POST", "/goim/push/room?operation=1000&room=1", 400),
            ("POST", "/goim/push/room?operation=1000&type=live", 400),
            ("POST", "/goim/push/room?type=live&room=1", 400),
            ("POST", "/goim/push/all", 400),
            ("GET", "/goim/online/room?type=live", 400),
            ("GET", "/goim/online/room?rooms=1", 400),
            ("GET", "/goim/online/top?type=live", 400),
            ("GET", "/goim/online/top?type=live&limit=x", 400),
            ("GET", "/goim/online/top?type=live&limit=0", 400),
            ("GET", "/goim/online/top?limit=5", 400),
            // goim's gin router registers each path for one method: another is gin's 404.
            ("GET", "/goim/push/mids?operation=1000&mids=1", 404),
            ("POST", "/goim/online/total", 404),
            ("DELETE", "/goim/nodes/weighted", 404),
            ("GET", "/goim/nodes/debug", 404),
            ("GET", "/goim/push", 404),
        ]
        for (method, path, status) in cases {
            let response = try await gateway.http(goimRequest(method, path, body: method == "POST" ? Array("m".utf8) : nil))
            expectGoimError(response, status: status, "\(method) \(path)")
            #expect(response.header("allow") == nil, "\(method) \(path): a 404, not a 405: \(response)")
        }
        let large = try await gateway.http(goimRequest("POST", "/goim/push/all?operation=1000", body: Array(repeating: 0x61, count: 2048)))
        expectGoimError(large, status: 413, "a body over max_body")
        // /v1 keeps its envelope.
        let v1 = try await gateway.http(HTTP.request("GET", "/v1/push"))
        #expect(v1.status == 405 && v1.errorCode == "method_not_allowed", "\(v1)")

        let keyed = try await GatewayProcess.start(["PUSHGW_API_KEYS": "secret"])
        defer { keyed.stop() }
        let unauthorized = try await keyed.http(goimRequest("POST", "/goim/push/all?operation=1000", body: Array("m".utf8)))
        expectGoimError(unauthorized, status: 401, "no API key")
        let authorized = try await keyed.http(goimRequest("POST", "/goim/push/all?operation=1000", body: Array("m".utf8), apiKey: "secret"))
        _ = expectGoimOK(authorized, "with the API key")

        let down = try await GatewayProcess.start(redis: .unreachable)
        defer { down.stop() }
        for path in ["/goim/online/total", "/goim/online/room?type=live&rooms=1", "/goim/online/top?type=live&limit=3"] {
            let response = try await down.http(goimRequest("GET", path))
            expectGoimError(response, status: 503, code: -500, "GET \(path) with Redis down")
        }
    }

    @Test("CHANGE_ROOM takes goim's bare room id as well as {\"room_id\"}; an empty body leaves the room")
    func goimChangeRoomBareBody() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let mover = try await WireClient.connect(gateway)
        try await mover.goimAuth(mid: 1, key: "m1", room: "test://1")
        let stayer = try await WireClient.connect(gateway)
        try await stayer.goimAuth(mid: 2, key: "m2", room: "test://2")

        try mover.send(op: Op.changeRoom, seq: 40, text: "test://2")
        let reply = try #require(try await mover.readFrame())
        #expect(reply.op == Op.changeRoomReply && reply.seq == 40 && reply.text == "test://2", "CHANGE_ROOM_REPLY echoes the body: \(reply)")
        #expect(try await mover.heartbeat(seq: 41) == 2, "test://2 now holds both")
        let push = try await gateway.http(goimRequest("POST", "/goim/push/room?operation=1000&type=test&room=2", body: Array("to 2".utf8)))
        _ = expectGoimOK(push, "push/room test://2")
        for (name, client) in [("m1", mover), ("m2", stayer)] {
            let frames = try await client.readRoomMessages(1)
            #expect(frames.first?.body == Array("to 2".utf8), "\(name): \(frames)")
        }

        // The JSON form still works, and goim's empty body (ChangeRoom("")) leaves every room.
        try mover.send(op: Op.changeRoom, seq: 42, text: #"{"room_id":"test://3"}"#)
        #expect(try await mover.readFrame()?.op == Op.changeRoomReply)
        #expect(try await mover.heartbeat(seq: 43) == 1, "test://3 holds the mover only")
        try mover.send(op: Op.changeRoom, seq: 44, body: [])
        let left = try #require(try await mover.readFrame())
        #expect(left.op == Op.changeRoomReply && left.seq == 44 && left.body.isEmpty, "\(left)")
        #expect(try await mover.heartbeat(seq: 45) == 0, "no room")
    }

    @Test("SEND_MSG (op 4) is answered as goim's comet answers it: op 4, the same seq, an empty body; the connection stays up")
    func goimSendMessage() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.goimAuth(mid: 5, key: "s1", room: nil)
        try client.send(op: 4, seq: 7, text: "hello")
        let reply = try #require(try await client.readFrame())
        #expect(reply.op == 4 && reply.seq == 7 && reply.body.isEmpty, "\(reply)")
        try client.send(op: 4, seq: 8)
        let empty = try #require(try await client.readFrame())
        #expect(empty.op == 4 && empty.seq == 8 && empty.body.isEmpty, "\(empty)")
        try await client.expectNothingPending("still up, nothing else sent")

        let browser = try await WebSocketClient.connect(gateway)
        try await browser.auth(mid: 6, key: "s2")
        try browser.send(op: 4, seq: 9, text: "from the browser")
        let answer = try #require(try await browser.readFrame())
        #expect(answer.op == 4 && answer.seq == 9 && answer.body.isEmpty, "\(answer)")
        #expect(try await browser.heartbeat(seq: 10) == 0, "still up")
    }
}
