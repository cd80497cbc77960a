// Stored messages (SPEC §2 delivery guarantees, §3 push replies, §5 Redis down): seqs, SYNC, READ, ACK, AUTH
// replay with last_seq, and 503 — never 200 — while Redis is down.
import Foundation
import Testing

@Suite("Stored messages", .timeLimit(.minutes(1)))
struct StoredMessageTests {
    @Test("A push stores by default: the reply has the user's next seq and the frame carries it", arguments: TestStorage.allCases)
    func storedPushSeqs(storage: TestStorage) async throws {
        let gateway = try await GatewayProcess.start(on: storage)
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "st", key: "k")

        let pushes: [(name: String, body: String, payload: String)] = [
            ("store absent", pushBody(users: ["st"], payload: "1", store: nil, id: "s1"), "1"),
            ("store true", pushBody(users: ["st"], payload: "2", store: true, id: "s2"), "2"),
            ("device push, store absent", pushBody(devices: [("st", "k")], payload: "3", store: nil, id: "s3"), "3"),
        ]
        for (index, push) in pushes.enumerated() {
            let response = try await gateway.push(push.body)
            #expect(response.status == 200, "\(push.name): \(response)")
            #expect(response.json?["id"] as? String == "s\(index + 1)", "\(push.name): \(response)")
            let seqs = response.json?["seqs"] as? [String: Any]
            #expect(number(seqs?["st"]) == Double(index + 1), "\(push.name): \(response)")
            let frame = try #require(try await client.readFrame(), "\(push.name): closed")
            #expect(frame.op == 1000 && frame.seq == UInt32(index + 1), "\(push.name): \(frame)")
            #expect(frame.text == push.payload, "\(push.name): \(frame)")
        }

        // An offline user's message is stored too.
        let both = try await gateway.push(pushBody(users: ["st", "away"], payload: "4", store: nil))
        #expect(both.status == 200, "\(both)")
        let seqs = both.json?["seqs"] as? [String: Any]
        #expect(number(seqs?["st"]) == 4, "\(both)")
        #expect(number(seqs?["away"]) == 1, "\(both)")
        let online = both.json?["online"] as? [String: Any]
        #expect(number(online?["st"]) == 1, "\(both)")
        #expect(online?["away"] == nil || number(online?["away"]) == 0, "\(both)")
        let frame = try await client.readFrame()
        #expect(frame?.seq == 4 && frame?.text == "4", "\(String(describing: frame))")
    }

    @Test("SYNC returns the stored messages after N as a batch, READ answers unread, ACK is silent, AUTH with last_seq replays", arguments: TestStorage.allCases)
    func syncReadAckReplay(storage: TestStorage) async throws {
        let gateway = try await GatewayProcess.start(on: storage)
        defer { gateway.stop() }
        let first = try await WireClient.connect(gateway)
        try await first.auth(mid: "sy", key: "a")
        for index in 1...3 {
            let response = try await gateway.push(pushBody(users: ["sy"], payload: "{\"i\":\(index)}", store: true))
            #expect(response.status == 200, "\(response)")
            let frame = try await first.readFrame()
            #expect(frame?.seq == UInt32(index), "\(String(describing: frame))")
        }

        func sync(_ body: String, seq: UInt32) async throws -> [Frame] {
            try first.send(op: Op.sync, seq: seq, text: body)
            let reply = try #require(try await first.readFrame(), "closed after SYNC \(body)")
            #expect(reply.op == 21 && reply.seq == seq, "SYNC \(body): \(reply)")
            return try #require(splitBatch(reply.body), "SYNC \(body): the body is not whole frames: \(reply)")
        }
        let afterOne = try await sync(#"{"after":1,"limit":10}"#, seq: 50)
        #expect(afterOne.map(\.seq) == [2, 3], "\(afterOne)")
        #expect(afterOne.map(\.op) == [1000, 1000], "\(afterOne)")
        #expect(afterOne.map(\.text) == [#"{"i":2}"#, #"{"i":3}"#], "\(afterOne)")
        let limited = try await sync(#"{"after":0,"limit":2}"#, seq: 51)
        #expect(limited.map(\.seq) == [1, 2], "limit 2: \(limited)")
        let defaultLimit = try await sync(#"{"after":0}"#, seq: 52)
        #expect(defaultLimit.map(\.seq) == [1, 2, 3], "default limit: \(defaultLimit)")
        let none = try await sync(#"{"after":3,"limit":10}"#, seq: 53)
        #expect(none.isEmpty, "nothing after 3: \(none)")

        try first.send(op: Op.read, seq: 60, text: #"{"seq":2}"#)
        let read = try #require(try await first.readFrame())
        #expect(read.op == 23 && read.seq == 60, "\(read)")
        #expect(number(read.json?["unread"]) == 1, "read up to 2 of 3: \(read)")

        try first.send(op: Op.ack, seq: 61, text: #"{"seq":3}"#)
        try await first.expectNothingPending("ACK has no reply")

        // Another device of the user that has seen seq 1 gets 2 and 3 right after its AUTH_REPLY.
        let second = try await WireClient.connect(gateway)
        let reply = try await second.auth(mid: "sy", key: "b", lastSeq: 1)
        #expect(number(reply["code"]) == 0, "\(reply)")
        #expect(number(reply["last_seq"]) == 3, "\(reply)")
        #expect(number(reply["unread"]) == 1, "\(reply)")
        var replayed: [Frame] = []
        for _ in 0..<2 { if let frame = try await second.readFrame() { replayed.append(frame) } }
        #expect(replayed.map(\.seq) == [2, 3], "\(replayed)")
        #expect(replayed.map(\.text) == [#"{"i":2}"#, #"{"i":3}"#], "\(replayed)")
        try await second.expectNothingPending("only seq 2 and 3 are replayed")

        let user = try await gateway.http(HTTP.request("GET", "/v1/users/sy"))
        #expect(user.status == 200, "\(user)")
        #expect(user.json?["online"] as? Bool == true, "\(user)")
        #expect((user.json?["devices"] as? [Any])?.count == 2, "\(user)")
        #expect(number(user.json?["last_seq"]) == 3, "\(user)")
        #expect(number(user.json?["unread"]) == 1, "\(user)")
        #expect(number(user.json?["read_seq"]) == 2, "\(user)")
    }

    @Test("Redis down: stored pushes answer 503 unavailable and deliver nothing, clients stay, /healthz 503; Redis back: 200")
    func redisDown() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "rd", key: "k")

        gateway.stopRedis()
        let unhealthy = try await eventually(timeout: 5) {
            (try? await gateway.http(HTTP.request("GET", "/healthz")))?.status == 503
        }
        #expect(unhealthy, "/healthz should answer 503 while Redis is down")
        for (name, body) in [
            ("store absent", pushBody(users: ["rd"], payload: "1", store: nil, id: "d1")),
            ("store true", pushBody(users: ["rd"], payload: "2", store: true, id: "d2")),
            ("device push", pushBody(devices: [("rd", "k")], payload: "3", store: nil, id: "d3")),
        ] {
            let response = try await gateway.push(body)
            #expect(response.status == 503, "\(name): \(response)")
            #expect(response.errorCode == "unavailable", "\(name): \(response)")
            expectErrorShape(response, name)
            try await client.expectNothingPending("\(name): a push answered 503 was delivered")
        }
        #expect(try await client.heartbeat(seq: 5) == 0, "the client stays connected while Redis is down")

        try await gateway.startRedis()
        let healthy = try await eventually(timeout: 20) {
            (try? await gateway.http(HTTP.request("GET", "/healthz")))?.status == 200
        }
        #expect(healthy, "/healthz should answer 200 again once Redis is back")
        let response = try await gateway.push(pushBody(users: ["rd"], payload: "4", store: nil, id: "d4"))
        #expect(response.status == 200, "after Redis came back: \(response)")
        let frame = try await client.readFrame()
        #expect(frame?.op == 1000 && frame?.text == "4", "after Redis came back: \(String(describing: frame))")
    }
}
