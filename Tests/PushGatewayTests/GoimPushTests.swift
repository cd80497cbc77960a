// goim compatibility (SPEC §3 "goim compatibility", §2 RAW; issues 4 and 10): goim's logic HTTP API pushes —
// /goim/push/{keys,mids,room,all} with the raw message as the body, as goim's tools send them (`curl -d`: a form
// content type) — and goim's error replies. Room pushes reach a TCP client as bare frames and a WebSocket client as
// RAW (op 9) batches, as goim's comet writes them (`Proto.WriteTCP` writes a RAW's body unwrapped,
// `Proto.WriteWebsocket` the whole frame).
import Foundation
import Testing

@Suite("goim compatibility: pushes and errors", .serialized, .timeLimit(.minutes(1)))
struct GoimPushTests {
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
}
