// The offline inbox (SPEC §2 delivery guarantees, AUTH last_seq, SYNC, READ; §3 user endpoints): what an
// offline user gets when it connects, the inbox cap, SYNC paging and the read cursor.
import Foundation
import Testing

@Suite("Inbox", .timeLimit(.minutes(1)))
struct InboxTests {
    @Test("Pushes to an offline user get seqs 1…N; AUTH last_seq 0 replays all N in order, last_seq k those after k, no last_seq none", arguments: TestStorage.allCases)
    func offlineInbox(storage: TestStorage) async throws {
        let gateway = try await GatewayProcess.start(on: storage)
        defer { gateway.stop() }

        let binary: [UInt8] = [0x00, 0xff, 0x01, 0x80, 0x0a, 0x0d, 0xc3, 0x28]
        let messages: [(op: Int, body: [UInt8], payload: String?, b64: String?)] = [
            (1000, Array(#"{"n": 1, "text":"h\u00e9llo"}"#.utf8), #"{"n": 1, "text":"h\u00e9llo"}"#, nil),
            (1001, Array("[1,  2 ,3]".utf8), "[1,  2 ,3]", nil),
            (1000, binary, nil, Data(binary).base64EncodedString()),
            (2000, Array("\"héllo 😀\"".utf8), "\"héllo 😀\"", nil),
            (1000, Array("12.50".utf8), "12.50", nil),
            (4242, Array(#"{"n":6}"#.utf8), #"{"n":6}"#, nil),
        ]
        for (index, message) in messages.enumerated() {
            let response = try await gateway.push(
                storedPushBody(users: ["off"], op: message.op, payload: message.payload, payloadB64: message.b64, id: "off-\(index)"))
            #expect(response.status == 200, "push \(index + 1): \(response)")
            #expect(response.seq("off") == index + 1, "push \(index + 1): \(response)")
            #expect(response.online("off") == 0, "push \(index + 1) to an offline user: \(response)")
        }
        let n = messages.count

        // Device a, last_seq 0: AUTH_REPLY then all N, in order, exact op and bytes.
        let a = try await WireClient.connect(gateway)
        let replyA = try await a.auth(mid: "off", key: "a", lastSeq: 0)
        #expect(number(replyA["code"]) == 0, "\(replyA)")
        #expect(replyA["key"] as? String == "a", "\(replyA)")
        #expect(number(replyA["unread"]) == Double(n), "\(replyA)")
        #expect(number(replyA["last_seq"]) == Double(n), "\(replyA)")
        let replayedA = try await a.readFrames(n)
        #expect(replayedA.map(\.seq) == (1...n).map(UInt32.init), "last_seq 0: \(replayedA)")
        #expect(replayedA.map(\.op) == messages.map { UInt32($0.op) }, "last_seq 0: \(replayedA)")
        for (frame, message) in zip(replayedA, messages) {
            #expect(frame.body == message.body, "last_seq 0, seq \(frame.seq): \(frame)")
        }
        try await a.expectNothingPending("last_seq 0 replays exactly the N stored messages")

        // Device b, last_seq 4: only 5 and 6.
        let b = try await WireClient.connect(gateway)
        let replyB = try await b.auth(mid: "off", key: "b", lastSeq: 4)
        #expect(number(replyB["code"]) == 0 && number(replyB["last_seq"]) == Double(n), "\(replyB)")
        let replayedB = try await b.readFrames(n - 4)
        #expect(replayedB.map(\.seq) == (5...n).map(UInt32.init), "last_seq 4: \(replayedB)")
        for (frame, message) in zip(replayedB, messages[4...]) {
            #expect(frame.op == UInt32(message.op) && frame.body == message.body, "last_seq 4: \(frame)")
        }
        try await b.expectNothingPending("last_seq 4 replays only seqs 5 and 6")

        // Device c, no last_seq: no replay at all.
        let c = try await WireClient.connect(gateway)
        let replyC = try await c.auth(mid: "off", key: "c")
        #expect(number(replyC["code"]) == 0, "\(replyC)")
        #expect(number(replyC["last_seq"]) == Double(n), "\(replyC)")
        #expect(number(replyC["unread"]) == Double(n), "\(replyC)")
        try await c.expectNothingPending("without last_seq nothing is replayed")

        // A new message reaches all three, with the next seq.
        let next = try await gateway.push(storedPushBody(users: ["off"], op: 1000, payload: #"{"n":7}"#))
        #expect(next.status == 200 && next.seq("off") == n + 1, "\(next)")
        #expect(next.online("off") == 3, "\(next)")
        for (name, client) in [("a", a), ("b", b), ("c", c)] {
            let frame = try await client.readFrame()
            #expect(frame?.op == 1000 && frame?.seq == UInt32(n + 1), "\(name): \(String(describing: frame))")
            #expect(frame?.text == #"{"n":7}"#, "\(name): \(String(describing: frame))")
            try await client.expectNothingPending("\(name): only seq \(n + 1)")
        }
    }

    @Test("inbox.max 5: of 8 stored, AUTH last_seq 0 and SYNC after 0 give seqs 4…8; the user shows last_seq 8, unread ≤ 5")
    func inboxCap() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_INBOX_MAX": "5"])
        defer { gateway.stop() }
        for index in 1...8 {
            let response = try await gateway.push(storedPushBody(users: ["cap"], payload: "{\"i\":\(index)}"))
            #expect(response.status == 200 && response.seq("cap") == index, "push \(index): \(response)")
        }

        let client = try await WireClient.connect(gateway)
        let reply = try await client.auth(mid: "cap", key: "k", lastSeq: 0)
        #expect(number(reply["code"]) == 0, "\(reply)")
        #expect(number(reply["last_seq"]) == 8, "\(reply)")
        let replayed = try await client.readFrames(5)
        #expect(replayed.map(\.seq) == [4, 5, 6, 7, 8], "AUTH last_seq 0 with cap 5: \(replayed)")
        #expect(replayed.map(\.text) == (4...8).map { "{\"i\":\($0)}" }, "\(replayed)")
        try await client.expectNothingPending("only the 5 kept messages are replayed")

        let (_, synced) = try await client.sync(#"{"after":0,"limit":100}"#, seq: 31)
        #expect(synced.map(\.seq) == [4, 5, 6, 7, 8], "SYNC after 0 with cap 5: \(synced)")
        #expect(synced.map(\.text) == (4...8).map { "{\"i\":\($0)}" }, "\(synced)")

        let info = try await gateway.userInfo("cap")
        #expect(number(info["last_seq"]) == 8, "\(info)")
        let unread = try #require(number(info["unread"]), "no unread in \(info)")
        #expect(unread <= 5 && unread >= 0, "unread counts at most the kept messages: \(info)")

        let polled = try await gateway.http(HTTP.request("GET", "/v1/users/cap/messages?after=0"))
        let seqs = (polled.json?["messages"] as? [[String: Any]])?.compactMap { number($0["seq"]).map(Int.init) }
        #expect(polled.status == 200 && seqs == [4, 5, 6, 7, 8], "GET messages after 0 with cap 5: \(polled)")
    }

    @Test("SYNC after 2 limit 5 gives 5 whole frames 3…7 echoing the request seq; after 7 gives 8…12; after 12 nothing; paging gets all 12")
    func syncLimits() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        func op(_ seq: Int) -> UInt32 { UInt32(1000 + seq % 3) }
        func payload(_ seq: Int) -> String { "{\"seq\":\(seq),\"pad\":\"\(String(repeating: "x", count: seq))\"}" }
        for index in 1...12 {
            let response = try await gateway.push(storedPushBody(users: ["sl"], op: Int(op(index)), payload: payload(index)))
            #expect(response.status == 200 && response.seq("sl") == index, "push \(index): \(response)")
        }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "sl", key: "k")
        try await client.expectNothingPending("no last_seq: no replay")

        let (first, page) = try await client.sync(#"{"after":2,"limit":5}"#, seq: 0x0102_0304)
        #expect(first.seq == 0x0102_0304, "\(first)")
        #expect(page.map(\.seq) == [3, 4, 5, 6, 7], "after 2 limit 5: \(page)")
        #expect(page.map(\.op) == (3...7).map(op), "after 2 limit 5: \(page)")
        #expect(page.map(\.text) == (3...7).map(payload), "after 2 limit 5: \(page)")
        #expect(page.allSatisfy { $0.headerLength == 16 }, "\(page)")

        let (_, rest) = try await client.sync(#"{"after":7,"limit":100}"#, seq: 8)
        #expect(rest.map(\.seq) == [8, 9, 10, 11, 12], "after 7 limit 100: \(rest)")
        #expect(rest.map(\.op) == (8...12).map(op), "\(rest)")
        #expect(rest.map(\.text) == (8...12).map(payload), "\(rest)")

        let (emptyReply, none) = try await client.sync(#"{"after":12,"limit":100}"#, seq: 9)
        #expect(emptyReply.body.isEmpty && none.isEmpty, "after 12: \(emptyReply)")

        let all = try await client.syncAll(after: 0, limit: 5)
        #expect(all.map(\.seq) == (1...12).map(UInt32.init), "paging with limit 5: \(all)")
        #expect(all.map(\.text) == (1...12).map(payload), "paging with limit 5")
        try await client.expectNothingPending("SYNC sends nothing beyond its reply")
    }

    @Test("READ and POST /v1/users/{uid}/read lower unread, never below 0 and never back; GET shows read_seq", arguments: TestStorage.allCases)
    func readAndUnread(storage: TestStorage) async throws {
        let gateway = try await GatewayProcess.start(on: storage)
        defer { gateway.stop() }
        for index in 1...10 {
            let response = try await gateway.push(storedPushBody(users: ["rr"], payload: "{\"i\":\(index)}"))
            #expect(response.status == 200 && response.seq("rr") == index, "push \(index): \(response)")
        }
        let client = try await WireClient.connect(gateway)
        let reply = try await client.auth(mid: "rr", key: "k")
        #expect(number(reply["unread"]) == 10, "\(reply)")

        #expect(try await client.readUpTo(2, seq: 101) == 8, "READ 2 of 10")
        #expect(try await client.readUpTo(5, seq: 102) == 5, "READ 5 of 10")
        #expect(try await client.readUpTo(3, seq: 103) == 5, "READ 3 after READ 5 must not go back")

        func httpRead(_ seq: Int) async throws -> HTTPResponse {
            try await gateway.http(HTTP.request("POST", "/v1/users/rr/read", body: "{\"seq\":\(seq)}"))
        }
        let read7 = try await httpRead(7)
        #expect(read7.status == 200 && number(read7.json?["unread"]) == 3, "POST read 7: \(read7)")
        let read6 = try await httpRead(6)
        #expect(read6.status == 200 && number(read6.json?["unread"]) == 3, "POST read 6 after 7: \(read6)")

        var info = try await gateway.userInfo("rr")
        #expect(number(info["read_seq"]) == 7, "\(info)")
        #expect(number(info["unread"]) == 3, "\(info)")
        #expect(number(info["last_seq"]) == 10, "\(info)")

        #expect(try await client.readUpTo(999, seq: 104) == 0, "READ beyond the last seq")
        let beyond = try await httpRead(1000)
        #expect(beyond.status == 200 && number(beyond.json?["unread"]) == 0, "POST read beyond the last seq: \(beyond)")
        info = try await gateway.userInfo("rr")
        #expect(number(info["unread"]) == 0, "\(info)")

        // A message that arrives after everything was read is unread.
        let later = try await gateway.push(storedPushBody(users: ["rr"], payload: #"{"i":11}"#))
        #expect(later.status == 200 && later.seq("rr") == 11, "\(later)")
        let frame = try await client.readFrame()
        #expect(frame?.seq == 11, "\(String(describing: frame))")
        info = try await gateway.userInfo("rr")
        #expect(number(info["unread"]) == 1, "seq 11 arrived after READ 999: it is unread: \(info)")
        #expect(try await client.readUpTo(11, seq: 105) == 0, "READ 11")

        let bad = try await gateway.http(HTTP.request("POST", "/v1/users/rr/read", body: #"{"seq":-1}"#))
        #expect(bad.status == 400, "POST read -1: \(bad)")
        expectErrorShape(bad, "POST read -1")
    }
}
