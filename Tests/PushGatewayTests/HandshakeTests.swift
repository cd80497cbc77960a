// AUTH, heartbeats, user ids, device keys and the two connection timers (SPEC §2).
import Foundation
import Testing

@Suite("Handshake and heartbeats", .timeLimit(.minutes(1)))
struct HandshakeTests {
    @Test("AUTH gets an AUTH_REPLY echoing its seq; HEARTBEAT gets a HEARTBEAT_REPLY echoing its seq, count 0")
    func authAndHeartbeat() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try client.send(op: Op.auth, seq: 5, text: #"{"mid":1,"key":"dev-a","platform":"ios"}"#)
        let reply = try #require(try await client.readFrame())
        #expect(reply.op == Op.authReply)
        #expect(reply.seq == 5)
        #expect(reply.version == 1)
        #expect(reply.headerLength == 16)
        #expect(reply.packetLength == UInt32(16 + reply.body.count))
        let json = try #require(reply.json, "AUTH_REPLY body is not a JSON object: \(reply)")
        #expect(number(json["code"]) == 0)
        #expect(json["key"] as? String == "dev-a")
        #expect(number(json["heartbeat"]) == 240)
        #expect(number(json["unread"]) == 0)
        #expect(number(json["last_seq"]) == 0)

        for seq: UInt32 in [77, 0, 1, UInt32.max] {
            try client.send(op: Op.heartbeat, seq: seq)
            let beat = try #require(try await client.readFrame())
            #expect(beat.op == Op.heartbeatReply, "\(beat)")
            #expect(beat.seq == seq)
            #expect(beat.version == 1)
            #expect(beat.body == [0, 0, 0, 0], "no room: count 0 as 4 bytes")
        }
    }

    @Test("Any frame version is accepted and replies carry version 1", arguments: [UInt16(0), 2, 7, 0xffff])
    func anyVersionAccepted(version: UInt16) async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try client.send(op: Op.auth, seq: 3, text: authBody(mid: "v", key: "k"), version: version)
        let reply = try #require(try await client.readFrame())
        #expect(reply.op == Op.authReply && reply.seq == 3, "\(reply)")
        #expect(reply.version == 1)
        try client.send(op: Op.heartbeat, seq: 4, version: version)
        let beat = try #require(try await client.readFrame())
        #expect(beat.op == Op.heartbeatReply && beat.seq == 4 && beat.version == 1, "\(beat)")
    }

    @Test("mid 42 (int) and mid \"42\" (string) are the same user")
    func intAndStringMidAreOneUser() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let byInt = try await WireClient.connect(gateway)
        let byString = try await WireClient.connect(gateway)
        try await byInt.auth(mid: 42, key: "a")
        try await byString.auth(mid: "42", key: "b")

        let response = try await gateway.push(pushBody(users: ["42"], payload: #"{"n":1}"#, id: "m1"))
        #expect(response.status == 200, "\(response)")
        let online = response.json?["online"] as? [String: Any]
        #expect(number(online?["42"]) == 2, "\(response)")
        try await byInt.expectMessage(op: 1000, body: Array(#"{"n":1}"#.utf8), "int mid")
        try await byString.expectMessage(op: 1000, body: Array(#"{"n":1}"#.utf8), "string mid")

        // A device push names the user as a string and reaches the int-mid connection.
        let device = try await gateway.push(pushBody(devices: [("42", "a")], payload: #"{"n":2}"#))
        #expect(device.status == 200, "\(device)")
        try await byInt.expectMessage(op: 1000, body: Array(#"{"n":2}"#.utf8))
        try await byString.expectNothingPending("device push for key a reached key b")
    }

    @Test("AUTH without key gets a generated, unique key that device pushes can address")
    func generatedKey() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let first = try await WireClient.connect(gateway)
        let second = try await WireClient.connect(gateway)
        let firstReply = try await first.auth(mid: "g")
        let secondReply = try await second.auth(mid: "g")
        let firstKey = try #require(firstReply["key"] as? String)
        let secondKey = try #require(secondReply["key"] as? String)
        #expect(!firstKey.isEmpty)
        #expect(!secondKey.isEmpty)
        #expect(firstKey != secondKey)
        #expect(number(firstReply["code"]) == 0)

        let response = try await gateway.push(pushBody(devices: [("g", secondKey)], payload: "[2]"))
        #expect(response.status == 200, "\(response)")
        try await second.expectMessage(op: 1000, body: Array("[2]".utf8))
        try await first.expectNothingPending("push for the second generated key reached the first")
    }

    @Test("No AUTH within handshake_timeout: ERROR handshake_timeout, then close; an authenticated client stays")
    func handshakeTimeout() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_HANDSHAKE_TIMEOUT": "1"])
        defer { gateway.stop() }
        let start = Date()
        let silent = try await WireClient.connect(gateway)
        let partial = try await WireClient.connect(gateway)
        try partial.sendRaw(Array(Wire.frame(op: Op.auth, seq: 1, text: authBody(mid: "p")).prefix(10)))
        let authenticated = try await WireClient.connect(gateway)
        try await authenticated.auth(mid: "ok")

        for (name, client) in [("silent", silent), ("partial AUTH", partial)] {
            let frames = try await client.readUntilClosed(timeout: 6)
            let elapsed = Date().timeIntervalSince(start)
            #expect(frames.count == 1, "\(name): \(frames)")
            #expect(frames.first?.op == Op.error, "\(name): \(frames)")
            #expect(frames.first?.errorCode == "handshake_timeout", "\(name): \(frames)")
            #expect(elapsed >= 0.9 && elapsed < 5, "\(name) closed after \(elapsed) s with handshake_timeout = 1")
        }
        // Past the handshake timeout the authenticated connection still answers.
        try await pause(max(0, 2 - Date().timeIntervalSince(start)))
        #expect(try await authenticated.heartbeat(seq: 9) == 0)
    }

    @Test("A connection silent for heartbeat × 1.25 + 10 s gets ERROR idle_timeout and is closed; a beating one stays")
    func idleTimeout() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_HEARTBEAT": "1"])
        defer { gateway.stop() }
        let silent = try await WireClient.connect(gateway)
        let beating = try await WireClient.connect(gateway)
        // The gateway's clock starts when it reads the AUTH, which is after this moment.
        let silentSince = Date()
        let reply = try await silent.auth(mid: "idle", key: "silent")
        #expect(number(reply["heartbeat"]) == 1, "AUTH_REPLY heartbeat should be the configured 1 s: \(reply)")
        try await beating.auth(mid: "idle", key: "beating")

        var closedAfter: Double?
        var silentFrames: [Frame] = []
        var seq: UInt32 = 1
        while Date().timeIntervalSince(silentSince) < 16 {
            // The beating client sends a heartbeat about every second, well within the limit.
            #expect(try await beating.heartbeat(seq: seq) == 0)
            seq += 1
            if closedAfter == nil {
                switch try await silent.read(timeout: 0.9) {
                case .frame(let frame): silentFrames.append(frame)
                case .closed: closedAfter = Date().timeIntervalSince(silentSince)
                case .timedOut: break
                }
            } else {
                if Date().timeIntervalSince(silentSince) > 13.5 { break }
                try await pause(0.9)
            }
        }
        let after = try #require(closedAfter, "silent connection not closed within 16 s; frames: \(silentFrames)")
        #expect(after >= 10.5 && after <= 14.5, "closed after \(after) s; expected about 1 × 1.25 + 10 = 11.25 s")
        #expect(silentFrames.count == 1, "\(silentFrames)")
        #expect(silentFrames.first?.errorCode == "idle_timeout", "\(silentFrames)")
        // The client that kept beating is still there.
        #expect(try await beating.heartbeat(seq: 999) == 0)
    }
}
