// The push and user endpoints beyond a plain push (SPEC §3): idempotency keys, batches, long-poll, kick and
// sessions.
import Foundation
import Testing

@Suite("User and push API", .timeLimit(.minutes(1)))
struct UserAPITests {
    // MARK: - Idempotency and batches

    @Test("Same id and body twice: same seqs, delivered once; same id with another payload: 409 conflict")
    func idempotency() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "idem", key: "k")

        let body = storedPushBody(users: ["idem", "idem-away"], payload: #"{"order":1}"#, id: "order-1")
        let first = try await gateway.push(body)
        #expect(first.status == 200, "\(first)")
        #expect(first.json?["id"] as? String == "order-1", "\(first)")
        #expect(first.seq("idem") == 1 && first.seq("idem-away") == 1, "\(first)")
        let frame = try await client.readFrame()
        #expect(frame?.seq == 1 && frame?.text == #"{"order":1}"#, "\(String(describing: frame))")

        let again = try await gateway.push(body)
        #expect(again.status == 200, "the same push again: \(again)")
        #expect(again.json?["id"] as? String == "order-1", "\(again)")
        #expect(again.seq("idem") == 1 && again.seq("idem-away") == 1, "the same push again must answer the same seqs: \(again)")
        try await client.expectNothingPending("the repeated push must not be delivered again")

        let conflicting = try await gateway.push(
            storedPushBody(users: ["idem", "idem-away"], payload: #"{"order":2}"#, id: "order-1"))
        #expect(conflicting.status == 409, "same id, other payload: \(conflicting)")
        #expect(conflicting.errorCode == "conflict", "\(conflicting)")
        expectErrorShape(conflicting, "409")
        try await client.expectNothingPending("a 409 push is not delivered")

        for uid in ["idem", "idem-away"] {
            let info = try await gateway.userInfo(uid)
            #expect(number(info["last_seq"]) == 1, "\(uid): nothing stored twice: \(info)")
        }
        let other = try await gateway.push(storedPushBody(users: ["idem"], payload: #"{"order":3}"#, id: "order-3"))
        #expect(other.status == 200 && other.seq("idem") == 2, "another id: \(other)")
        let next = try await client.readFrame()
        #expect(next?.seq == 2 && next?.text == #"{"order":3}"#, "\(String(describing: next))")
    }

    @Test("POST /v1/push/batch answers one result per item in order; a bad item is answered inline without spoiling the others")
    func batch() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "bt", key: "k")

        let items = [
            storedPushBody(users: ["bt"], payload: #"{"b":1}"#, id: "b1"),
            #"{"to":{"users":["bt"]},"op":5,"payload":{}}"#,  // op below 1000
            #"{"op":1000,"payload":{"b":"no target"}}"#,  // no "to"
            storedPushBody(users: ["bt"], op: 1001, payload: #"{"b":2}"#, id: "b2"),
            pushBody(users: ["bt"], payload: #"{"b":3}"#, store: false, id: "b3"),
        ]
        let response = try await gateway.http(
            HTTP.request("POST", "/v1/push/batch", body: "{\"pushes\":[" + items.joined(separator: ",") + "]}"))
        #expect(response.status == 200, "\(response)")
        let results = try #require(response.json?["results"] as? [[String: Any]], "\(response)")
        try #require(results.count == 5, "one result per item: \(response)")

        #expect(results[0]["id"] as? String == "b1", "\(results[0])")
        #expect(number((results[0]["seqs"] as? [String: Any])?["bt"]) == 1, "\(results[0])")
        for index in [1, 2] {
            #expect(number(results[index]["status"]) == 400, "item \(index): \(results[index])")
            let error = results[index]["error"] as? [String: Any]
            #expect(error?["code"] as? String == "bad_request", "item \(index): \(results[index])")
            #expect(error?["message"] is String, "item \(index): \(results[index])")
            #expect(results[index]["seqs"] == nil, "item \(index): \(results[index])")
        }
        #expect(results[3]["id"] as? String == "b2", "\(results[3])")
        #expect(number((results[3]["seqs"] as? [String: Any])?["bt"]) == 2, "\(results[3])")
        #expect(results[4]["id"] as? String == "b3", "\(results[4])")
        #expect((results[4]["seqs"] as? [String: Any])?.isEmpty == true, "transient item: \(results[4])")
        #expect(number((results[4]["online"] as? [String: Any])?["bt"]) == 1, "\(results[4])")

        // Two stored messages in seq order and the transient one (seq 0), whenever it was sent.
        let frames = try await client.readFrames(3)
        let stored = frames.filter { $0.seq != 0 }
        #expect(stored.map(\.seq) == [1, 2], "\(frames)")
        #expect(stored.map(\.op) == [1000, 1001], "\(frames)")
        #expect(stored.map(\.text) == [#"{"b":1}"#, #"{"b":2}"#], "\(frames)")
        #expect(frames.filter { $0.seq == 0 }.map(\.text) == [#"{"b":3}"#], "\(frames)")
        try await client.expectNothingPending("the bad items deliver nothing")
        let info = try await gateway.userInfo("bt")
        #expect(number(info["last_seq"]) == 2, "\(info)")
    }

    // MARK: - Long-poll

    @Test("GET messages?after=0&wait=5 with nothing stored answers as soon as a push arrives, with the payload as pushed")
    func longPollWakesOnPush() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        let started = Date()
        try connection.sendRaw(HTTP.request("GET", "/v1/users/lp/messages?after=0&wait=5"))
        try await pause(0.5)
        #expect(!connection.socket.isReadable(timeout: 0), "answered before anything was stored")

        let payload = #"{"hello":"web","n":[1,2.5,null],"nested":{"t":true}}"#
        let pushedAt = Date()
        let push = try await gateway.push(storedPushBody(users: ["lp"], op: 1234, payload: payload))
        #expect(push.status == 200 && push.seq("lp") == 1, "\(push)")
        let response = try #require(try await connection.readResponse(timeout: 6), "closed instead of answering")
        let waited = Date().timeIntervalSince(pushedAt)
        #expect(waited < 2, "answered \(waited) s after the push, \(Date().timeIntervalSince(started)) s after the request")
        #expect(response.status == 200, "\(response)")
        let messages = try #require(response.json?["messages"] as? [[String: Any]], "\(response)")
        #expect(messages.count == 1, "\(response)")
        let message = try #require(messages.first)
        #expect(number(message["seq"]) == 1, "\(message)")
        #expect(number(message["op"]) == 1234, "\(message)")
        let ts = number(message["ts"]) ?? 0
        #expect(abs(ts / 1000 - unixNow()) < 60 || abs(ts - unixNow()) < 60, "ts should be the store time: \(message)")
        let expected = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? NSDictionary
        #expect((message["payload"] as? NSDictionary) == expected, "payload as pushed: \(message)")
        #expect(message["payload_b64"] == nil, "\(message)")
        #expect(number(response.json?["last_seq"]) == 1, "\(response)")
    }

    @Test("GET messages: limit is respected, a binary payload comes back as payload_b64, after the last seq nothing")
    func messagesLimitAndBinary() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let binary: [UInt8] = [0xff, 0xfe, 0x00, 0x01, 0x80, 0x7b, 0x22]
        let pushes = [
            storedPushBody(users: ["lm"], payload: #"{"i":1}"#),
            storedPushBody(users: ["lm"], op: 1002, payloadB64: Data(binary).base64EncodedString()),
            storedPushBody(users: ["lm"], payload: #""text""#),
            storedPushBody(users: ["lm"], payload: "[4]"),
            storedPushBody(users: ["lm"], payload: "5"),
        ]
        for (index, body) in pushes.enumerated() {
            let response = try await gateway.push(body)
            #expect(response.status == 200 && response.seq("lm") == index + 1, "\(response)")
        }
        func get(_ query: String) async throws -> (seqs: [Int], messages: [[String: Any]], response: HTTPResponse) {
            let response = try await gateway.http(HTTP.request("GET", "/v1/users/lm/messages?\(query)"))
            #expect(response.status == 200, "\(query): \(response)")
            #expect(number(response.json?["last_seq"]) == 5, "\(query): \(response)")
            let messages = (response.json?["messages"] as? [[String: Any]]) ?? []
            return (messages.compactMap { number($0["seq"]).map(Int.init) }, messages, response)
        }
        let page1 = try await get("after=0&limit=2")
        #expect(page1.seqs == [1, 2], "\(page1.response)")
        let binaryMessage = page1.messages.count == 2 ? page1.messages[1] : [:]
        #expect(number(binaryMessage["op"]) == 1002, "\(page1.response)")
        #expect(binaryMessage["payload"] == nil, "binary payload must not come back as payload: \(page1.response)")
        let decoded = (binaryMessage["payload_b64"] as? String).flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
        #expect(decoded == binary, "payload_b64 must decode to the bytes pushed: \(page1.response)")
        #expect((page1.messages.first?["payload"] as? NSDictionary) == ["i": 1] as NSDictionary, "\(page1.response)")

        let page2 = try await get("limit=2&after=2")
        #expect(page2.seqs == [3, 4], "\(page2.response)")
        #expect(page2.messages.first?["payload"] as? String == "text", "\(page2.response)")
        let page3 = try await get("after=4&limit=2")
        #expect(page3.seqs == [5], "\(page3.response)")
        let none = try await get("after=5")
        #expect(none.seqs.isEmpty && none.messages.isEmpty, "\(none.response)")
    }

    @Test("GET messages?wait=1 with nothing stored answers an empty list after about 1 s")
    func longPollTimesOut() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let started = Date()
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        let response = try await connection.roundTrip(HTTP.request("GET", "/v1/users/nobody/messages?after=0&wait=1"), timeout: 5)
        let elapsed = Date().timeIntervalSince(started)
        #expect(response.status == 200, "\(response)")
        #expect((response.json?["messages"] as? [Any])?.isEmpty == true, "\(response)")
        #expect(number(response.json?["last_seq"]) == 0, "\(response)")
        #expect(elapsed >= 0.8 && elapsed < 3, "wait=1 answered after \(elapsed) s")
        // The keep-alive connection still serves requests.
        let health = try await connection.roundTrip(HTTP.request("GET", "/healthz"))
        #expect(health.status == 200, "\(health)")
    }

    @Test("GET messages with a bad query value answers 400", arguments: [
        "after=-1", "limit=0", "wait=9999", "after=abc", "limit=-5", "wait=-1",
    ])
    func messagesBadQuery(query: String) async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let response = try await gateway.http(HTTP.request("GET", "/v1/users/bq/messages?\(query)"))
        #expect(response.status == 400, "\(query): \(response)")
        #expect(response.errorCode == "bad_request", "\(query): \(response)")
        expectErrorShape(response, query)
    }

    // MARK: - Kick and sessions

    @Test("DELETE /v1/users/{uid}/devices/{key}: that device gets DISCONNECT kicked, reconnect false, then close; it is no longer listed")
    func kick() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let phone = try await WireClient.connect(gateway)
        let tablet = try await WireClient.connect(gateway)
        try await phone.auth(mid: "kk", key: "phone")
        try await tablet.auth(mid: "kk", key: "tablet")
        #expect(try await gateway.deviceKeys("kk") == ["phone", "tablet"])

        let response = try await gateway.http(HTTP.request("DELETE", "/v1/users/kk/devices/phone"))
        #expect(response.status == 200, "\(response)")
        let frames = try await phone.readUntilClosed()
        #expect(frames.count == 1, "exactly one DISCONNECT, then close: \(frames)")
        let disconnect = try #require(frames.first, "closed without DISCONNECT")
        #expect(disconnect.op == Op.disconnect, "\(disconnect)")
        let body = try #require(disconnect.json, "DISCONNECT body is not JSON: \(disconnect)")
        #expect(body["reason"] as? String == "kicked", "\(disconnect)")
        #expect(body["reconnect"] as? Bool == false, "\(disconnect)")

        #expect(try await gateway.deviceKeys("kk") == ["tablet"], "the kicked device is still listed")
        #expect(try await tablet.heartbeat(seq: 3) == 0, "the other device stays")
        // The kicked connection (DISCONNECT sent, nothing more will reach it) no longer counts as online, even while
        // its client has not closed its end yet.
        let push = try await gateway.push(storedPushBody(users: ["kk"], payload: #"{"after":"kick"}"#))
        #expect(push.status == 200, "\(push)")
        #expect(push.online("kk") == 1, "online after the phone was kicked: only the tablet is connected: \(push)")
        let frame = try await tablet.readFrame()
        #expect(frame?.text == #"{"after":"kick"}"#, "\(String(describing: frame))")
    }

    @Test("GET /v1/users/{uid} lists each connected device with key, node, platform, since; a closed one goes away")
    func sessions() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        var info = try await gateway.userInfo("ss")
        #expect(info["online"] as? Bool == false, "\(info)")
        #expect((info["devices"] as? [Any])?.isEmpty == true, "\(info)")

        let desk = try await WireClient.connect(gateway)
        try await desk.auth(mid: "ss", key: "desk-1", platform: "web")
        let phone = try await WireClient.connect(gateway)
        try await phone.auth(mid: "ss", key: "phone-1", platform: "android")

        info = try await gateway.userInfo("ss")
        #expect(info["online"] as? Bool == true, "\(info)")
        let devices = (info["devices"] as? [[String: Any]]) ?? []
        #expect(devices.compactMap { $0["key"] as? String }.sorted() == ["desk-1", "phone-1"], "\(info)")
        for device in devices {
            let key = device["key"] as? String ?? "?"
            #expect(device["platform"] as? String == (key == "desk-1" ? "web" : "android"), "\(device)")
            #expect((device["node"] as? String).map { !$0.isEmpty } == true, "\(device)")
            let since = number(device["since"]) ?? 0
            let near = abs(since - unixNow()) < 120 || abs(since / 1000 - unixNow()) < 120
            #expect(near, "since should be the connect time: \(device)")
        }

        desk.close()
        let deskGone = try await eventually(timeout: 5) { try await gateway.deviceKeys("ss") == ["phone-1"] }
        if !deskGone { Issue.record("closed device still listed: \(try await gateway.userInfo("ss"))") }
        info = try await gateway.userInfo("ss")
        #expect(info["online"] as? Bool == true, "\(info)")

        phone.close()
        let allGone = try await eventually(timeout: 5) {
            let info = try await gateway.userInfo("ss")
            return info["online"] as? Bool == false && (info["devices"] as? [Any])?.isEmpty == true
        }
        if !allGone { Issue.record("no device connected, yet: \(try await gateway.userInfo("ss"))") }
    }
}
