// POST /v1/push reaching connected clients: users, devices, everyone, payload bytes, accepted operations and
// rooms (SPEC §2, §3).
import Foundation
import Testing

/// Payload JSON texts that must reach the client byte for byte, spacing and escapes included.
let payloadTexts: [String] = [
    #"{"a": 1}"#,
    #"[1,  2 , 3]"#,
    #""h\u00e9llo w\u00f6rld \ud83d\ude00""#,
    "\"héllo wörld 😀\"",
    "12.50",
    "true",
    #"{"nested" : {"deep":[{"x":"y\"z"}, true, false, null]},   "n": -0.0e+1, "s":"a\/b"}"#,
]

@Suite("Push delivery", .timeLimit(.minutes(1)))
struct PushDeliveryTests {
    @Test("A push to a user reaches it with the payload's JSON text unchanged", arguments: payloadTexts)
    func payloadBytesUnchanged(payload: String) async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "u1", key: "k1")
        let response = try await gateway.push(pushBody(users: ["u1"], op: 1000, payload: payload, id: "x1"))
        #expect(response.status == 200, "\(response)")
        let json = try #require(response.json, "\(response)")
        #expect(json["id"] as? String == "x1")
        #expect((json["seqs"] as? [String: Any])?.isEmpty == true, "transient push: no seqs: \(response)")
        #expect(number((json["online"] as? [String: Any])?["u1"]) == 1, "\(response)")
        try await client.expectMessage(op: 1000, body: Array(payload.utf8))
    }

    @Test("payload_b64 delivers the decoded bytes, binary included")
    func payloadBase64() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "bin", key: "k")
        var bytes: [UInt8] = [0, 1, 2, 0xff, 0xfe, 0x80, 0x0a, 0x0d, 0x22, 0x5c]
        var state: UInt32 = 12345
        for _ in 0..<500 {
            state = state &* 1_103_515_245 &+ 12345
            bytes.append(UInt8(truncatingIfNeeded: state >> 16))
        }
        let b64 = Data(bytes).base64EncodedString()
        let response = try await gateway.push(pushBody(users: ["bin"], op: 4321, payloadB64: b64, id: "b64"))
        #expect(response.status == 200, "\(response)")
        #expect(response.json?["id"] as? String == "b64")
        try await client.expectMessage(op: 4321, body: bytes)
    }

    @Test("Two devices of one user both receive a user push; online counts both")
    func twoDevicesOfOneUser() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let phone = try await WireClient.connect(gateway)
        let tablet = try await WireClient.connect(gateway)
        try await phone.auth(mid: "u1", key: "phone")
        try await tablet.auth(mid: "u1", key: "tablet")
        let response = try await gateway.push(pushBody(users: ["u1"], payload: #"{"hi":true}"#))
        #expect(response.status == 200, "\(response)")
        #expect(number((response.json?["online"] as? [String: Any])?["u1"]) == 2, "\(response)")
        try await phone.expectMessage(op: 1000, body: Array(#"{"hi":true}"#.utf8), "phone")
        try await tablet.expectMessage(op: 1000, body: Array(#"{"hi":true}"#.utf8), "tablet")
    }

    @Test("A push to several users reaches each; online counts each user's connections")
    func severalUsers() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let a = try await WireClient.connect(gateway)
        let b1 = try await WireClient.connect(gateway)
        let b2 = try await WireClient.connect(gateway)
        let other = try await WireClient.connect(gateway)
        try await a.auth(mid: "a", key: "1")
        try await b1.auth(mid: "b", key: "1")
        try await b2.auth(mid: "b", key: "2")
        try await other.auth(mid: "c", key: "1")
        let response = try await gateway.push(pushBody(users: ["a", "b", "nobody"], op: 1007, payload: "[7]", id: "multi"))
        #expect(response.status == 200, "\(response)")
        let online = response.json?["online"] as? [String: Any]
        #expect(number(online?["a"]) == 1, "\(response)")
        #expect(number(online?["b"]) == 2, "\(response)")
        #expect(online?["nobody"] == nil || number(online?["nobody"]) == 0, "\(response)")
        for (name, client) in [("a", a), ("b1", b1), ("b2", b2)] {
            try await client.expectMessage(op: 1007, body: Array("[7]".utf8), "\(name)")
        }
        try await other.expectNothingPending("user c was not addressed")
    }

    @Test("A device push reaches only the named devices")
    func devicePush() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let u1k1 = try await WireClient.connect(gateway)
        let u1k2 = try await WireClient.connect(gateway)
        let u2k1 = try await WireClient.connect(gateway)
        try await u1k1.auth(mid: "u1", key: "k1")
        try await u1k2.auth(mid: "u1", key: "k2")
        try await u2k1.auth(mid: "u2", key: "k1")

        let one = try await gateway.push(pushBody(devices: [("u1", "k2")], payload: #"{"d":1}"#, id: "d1"))
        #expect(one.status == 200, "\(one)")
        #expect(one.json?["id"] as? String == "d1", "\(one)")
        try await u1k2.expectMessage(op: 1000, body: Array(#"{"d":1}"#.utf8))
        try await u1k1.expectNothingPending("u1/k1 was not addressed")
        try await u2k1.expectNothingPending("u2/k1 was not addressed")

        // Same key under another user, and a device that is not connected.
        let two = try await gateway.push(
            pushBody(devices: [("u1", "k1"), ("u2", "k1"), ("u3", "k9")], payload: #"{"d":2}"#))
        #expect(two.status == 200, "\(two)")
        try await u1k1.expectMessage(op: 1000, body: Array(#"{"d":2}"#.utf8), "u1/k1")
        try await u2k1.expectMessage(op: 1000, body: Array(#"{"d":2}"#.utf8), "u2/k1")
        try await u1k2.expectNothingPending("u1/k2 was not addressed")
    }

    @Test("to.all reaches every authenticated connection, not one still in its handshake")
    func broadcast() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        var clients: [WireClient] = []
        for index in 0..<3 {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: .string("all-\(index)"), key: "k")
            clients.append(client)
        }
        let unauthenticated = try await WireClient.connect(gateway)
        let response = try await gateway.push(pushBody(all: true, op: 2000, payload: #"{"all": "yes"}"#, id: "bc"))
        #expect(response.status == 200, "\(response)")
        #expect(number(response.json?["delivered"]) == 3, "\(response)")
        #expect(response.json?["id"] as? String == "bc", "\(response)")
        for client in clients {
            try await client.expectMessage(op: 2000, body: Array(#"{"all": "yes"}"#.utf8))
        }
        // The unauthenticated connection got nothing: its first frame after AUTH is the AUTH_REPLY.
        try unauthenticated.send(op: Op.auth, seq: 5, text: authBody(mid: "late", key: "k"))
        let first = try await unauthenticated.readFrame()
        #expect(first?.op == Op.authReply && first?.seq == 5, "\(String(describing: first))")
    }

    @Test("The accepts list filters application operations; an empty or absent list accepts all")
    func acceptsFilter() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let only1001 = try await WireClient.connect(gateway)
        let emptyList = try await WireClient.connect(gateway)
        let noList = try await WireClient.connect(gateway)
        let both = try await WireClient.connect(gateway)
        try await only1001.auth(mid: "f", key: "only1001", accepts: [1001])
        try await emptyList.auth(mid: "f", key: "empty", accepts: [])
        try await noList.auth(mid: "f", key: "none")
        try await both.auth(mid: "f", key: "both", accepts: [1000, 1002])

        let first = try await gateway.push(pushBody(users: ["f"], op: 1000, payload: "1"))
        #expect(first.status == 200, "\(first)")
        #expect(number((first.json?["online"] as? [String: Any])?["f"]) == 4, "\(first)")
        try await emptyList.expectMessage(op: 1000, body: Array("1".utf8), "empty accepts")
        try await noList.expectMessage(op: 1000, body: Array("1".utf8), "no accepts")
        try await both.expectMessage(op: 1000, body: Array("1".utf8), "accepts 1000,1002")
        try await only1001.expectNothingPending("op 1000 reached a connection accepting only 1001")

        let second = try await gateway.push(pushBody(users: ["f"], op: 1001, payload: "2"))
        #expect(second.status == 200, "\(second)")
        try await only1001.expectMessage(op: 1001, body: Array("2".utf8), "accepts 1001")
        try await emptyList.expectMessage(op: 1001, body: Array("2".utf8), "empty accepts")
        try await noList.expectMessage(op: 1001, body: Array("2".utf8), "no accepts")
        try await both.expectNothingPending("op 1001 reached a connection accepting 1000,1002")
    }

    @Test("SUB_OPS adds to and UNSUB_OPS removes from the accepted operations; replies echo seq and body")
    func subOpsAndUnsubOps() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "s", key: "k", accepts: [1001])

        func push(_ op: Int, _ payload: String) async throws {
            let response = try await gateway.push(pushBody(users: ["s"], op: op, payload: payload))
            #expect(response.status == 200, "\(response)")
        }

        try await push(1000, "1")
        try await client.expectNothingPending("1000 before SUB_OPS")

        try client.send(op: Op.subOps, seq: 21, text: "1000,1002")
        let subReply = try #require(try await client.readFrame())
        #expect(subReply.op == Op.subOpsReply && subReply.seq == 21, "\(subReply)")
        #expect(subReply.text == "1000,1002", "\(subReply)")
        try await push(1000, "2")
        try await client.expectMessage(op: 1000, body: Array("2".utf8), "1000 after SUB_OPS")
        try await push(1002, "3")
        try await client.expectMessage(op: 1002, body: Array("3".utf8), "1002 after SUB_OPS")

        try client.send(op: Op.unsubOps, seq: 22, text: "1000")
        let unsubReply = try #require(try await client.readFrame())
        #expect(unsubReply.op == Op.unsubOpsReply && unsubReply.seq == 22, "\(unsubReply)")
        #expect(unsubReply.text == "1000", "\(unsubReply)")
        try await push(1000, "4")
        try await client.expectNothingPending("1000 after UNSUB_OPS")
        try await push(1001, "5")
        try await client.expectMessage(op: 1001, body: Array("5".utf8), "1001 still accepted")
        try await push(1002, "6")
        try await client.expectMessage(op: 1002, body: Array("6".utf8), "1002 still accepted")
    }

    @Test("HEARTBEAT_REPLY counts the room set by AUTH room_id and CHANGE_ROOM")
    func roomCounts() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let a = try await WireClient.connect(gateway)
        let b = try await WireClient.connect(gateway)
        let c = try await WireClient.connect(gateway)
        let d = try await WireClient.connect(gateway)
        try await a.auth(mid: "ra", key: "k", roomID: "live://1")
        try await b.auth(mid: "rb", key: "k", roomID: "live://1")
        try await c.auth(mid: "rc", key: "k", roomID: "live://2")
        try await d.auth(mid: "rd", key: "k")
        #expect(try await a.heartbeat(seq: 1) == 2)
        #expect(try await b.heartbeat(seq: 1) == 2)
        #expect(try await c.heartbeat(seq: 1) == 1)
        #expect(try await d.heartbeat(seq: 1) == 0)

        try b.send(op: Op.changeRoom, seq: 33, text: #"{"room_id":"live://2"}"#)
        let reply = try #require(try await b.readFrame())
        #expect(reply.op == Op.changeRoomReply && reply.seq == 33, "\(reply)")
        #expect(reply.json?["room_id"] as? String == "live://2", "\(reply)")
        #expect(try await a.heartbeat(seq: 2) == 1)
        #expect(try await b.heartbeat(seq: 2) == 2)
        #expect(try await c.heartbeat(seq: 2) == 2)

        // D joins a room after AUTH.
        try d.send(op: Op.changeRoom, seq: 34, text: #"{"room_id":"live://1"}"#)
        let joined = try #require(try await d.readFrame())
        #expect(joined.op == Op.changeRoomReply && joined.seq == 34, "\(joined)")
        #expect(try await a.heartbeat(seq: 3) == 2)

        // A connection that goes away leaves its room.
        c.close()
        var seq: UInt32 = 10
        let left = try await eventually(timeout: 3) {
            seq += 1
            return try await b.heartbeat(seq: seq) == 1
        }
        #expect(left, "room live://2 still counts a closed connection")
    }
}
