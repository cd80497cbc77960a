// Frame boundaries (split, byte by byte, coalesced) and every malformed-frame case (SPEC §2).
import Foundation
import Testing

/// One malformed input: sent (after an AUTH if `authenticateFirst`), it must produce exactly one ERROR with
/// `code` (and `op` in its body, when given) and then the server's close.
struct BadFrameCase: Sendable, CustomTestStringConvertible {
    let name: String
    let authenticateFirst: Bool
    let bytes: [UInt8]
    let code: String
    let op: UInt32?

    var testDescription: String { name }

    /// The gateway these cases run against has max_frame = 1024.
    static let maxFrame = 1024

    static let all: [BadFrameCase] = {
        let auth = Array(authBody(mid: "bad", key: "k").utf8)
        return [
            BadFrameCase(
                name: "packet length 15", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1, packetLength: 15), code: "bad_length", op: nil),
            BadFrameCase(
                name: "packet length 0", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1, packetLength: 0), code: "bad_length", op: nil),
            BadFrameCase(
                name: "packet length 1 after AUTH", authenticateFirst: true,
                bytes: Wire.frame(op: Op.heartbeat, seq: 1, packetLength: 1), code: "bad_length", op: nil),
            BadFrameCase(
                name: "header length 15", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1, body: auth, headerLength: 15), code: "bad_header", op: nil),
            BadFrameCase(
                name: "header length 20", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1, body: auth, headerLength: 20), code: "bad_header", op: nil),
            BadFrameCase(
                name: "header length 0 after AUTH", authenticateFirst: true,
                bytes: Wire.frame(op: Op.heartbeat, seq: 1, headerLength: 0), code: "bad_header", op: nil),
            BadFrameCase(
                name: "packet length max_frame + 1", authenticateFirst: false,
                bytes: Array(Wire.frame(op: Op.auth, seq: 1, packetLength: UInt32(maxFrame + 1)).prefix(16)),
                code: "frame_too_large", op: nil),
            BadFrameCase(
                name: "packet length 2^32 - 1 after AUTH", authenticateFirst: true,
                bytes: Array(Wire.frame(op: Op.heartbeat, seq: 1, packetLength: UInt32.max).prefix(16)),
                code: "frame_too_large", op: nil),
            BadFrameCase(
                name: "HEARTBEAT before AUTH", authenticateFirst: false,
                bytes: Wire.frame(op: Op.heartbeat, seq: 1), code: "auth_required", op: Op.heartbeat),
            BadFrameCase(
                name: "CHANGE_ROOM before AUTH", authenticateFirst: false,
                bytes: Wire.frame(op: Op.changeRoom, seq: 1, text: #"{"room_id":"r"}"#), code: "auth_required",
                op: Op.changeRoom),
            BadFrameCase(
                name: "AUTH body not JSON", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1, text: "hello"), code: "bad_auth", op: Op.auth),
            BadFrameCase(
                name: "AUTH body empty", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1), code: "bad_auth", op: Op.auth),
            BadFrameCase(
                name: "AUTH body a JSON array", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1, text: #"[{"mid":1}]"#), code: "bad_auth", op: Op.auth),
            BadFrameCase(
                name: "AUTH without mid", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1, text: #"{"key":"k","platform":"ios"}"#), code: "bad_auth",
                op: Op.auth),
            BadFrameCase(
                name: "AUTH with an object as mid", authenticateFirst: false,
                bytes: Wire.frame(op: Op.auth, seq: 1, text: #"{"mid":{"id":1}}"#), code: "bad_auth", op: Op.auth),
            BadFrameCase(
                name: "second AUTH", authenticateFirst: true,
                bytes: Wire.frame(op: Op.auth, seq: 2, body: auth), code: "already_authenticated", op: Op.auth),
            BadFrameCase(
                name: "op 99", authenticateFirst: true,
                bytes: Wire.frame(op: 99, seq: 2), code: "unknown_op", op: 99),
            BadFrameCase(
                name: "op 1000 from a client", authenticateFirst: true,
                bytes: Wire.frame(op: 1000, seq: 2, text: "{}"), code: "unknown_op", op: 1000),
            BadFrameCase(
                name: "op 3 (HEARTBEAT_REPLY, a server op) from a client", authenticateFirst: true,
                bytes: Wire.frame(op: Op.heartbeatReply, seq: 2, body: [0, 0, 0, 0]), code: "unknown_op",
                op: Op.heartbeatReply),
            BadFrameCase(
                name: "op 8 (AUTH_REPLY, a server op) from a client", authenticateFirst: true,
                bytes: Wire.frame(op: Op.authReply, seq: 2, text: #"{"code":0}"#), code: "unknown_op",
                op: Op.authReply),
        ]
    }()
}

@Suite("Framing", .timeLimit(.minutes(1)))
struct FramingTests {
    @Test("A malformed frame gets one ERROR with the right code, then the server closes", arguments: BadFrameCase.all)
    func malformedFrame(_ bad: BadFrameCase) async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_MAX_FRAME": "\(BadFrameCase.maxFrame)"])
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        if bad.authenticateFirst { try await client.auth(mid: "bad", key: "k") }
        try client.sendRaw(bad.bytes)
        let frames = try await client.readUntilClosed(timeout: 5)
        #expect(frames.count == 1, "expected exactly ERROR then close, got \(frames)")
        let error = try #require(frames.first)
        #expect(error.op == Op.error, "\(error)")
        #expect(error.version == 1)
        let json = try #require(error.json, "ERROR body is not a JSON object: \(error)")
        #expect(json["code"] as? String == bad.code, "\(error)")
        #expect((json["message"] as? String).map { !$0.isEmpty } == true, "ERROR needs a message: \(error)")
        if let op = bad.op {
            #expect(number(json["op"]) == Double(op), "ERROR op should name the offending op: \(error)")
        }
    }

    @Test("A frame of exactly max_frame bytes is accepted")
    func frameAtMaxFrame() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_MAX_FRAME": "1024"])
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        var body = authBody(mid: "max", key: "k")
        body = String(body.dropLast()) + String(repeating: " ", count: 1024 - 16 - body.utf8.count) + "}"
        let frame = Wire.frame(op: Op.auth, seq: 1, text: body)
        #expect(frame.count == 1024)
        try client.sendRaw(frame)
        let reply = try #require(try await client.readFrame())
        #expect(reply.op == Op.authReply && reply.seq == 1, "\(reply)")
    }

    @Test("Unreadable SUB, UNSUB, SUB_OPS and UNSUB_OPS bodies answer ERROR bad_body; the connection stays")
    func nonFatalErrors() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "nf", key: "k")
        // SUB 24 and UNSUB 26 take {"topics":[…]} (see ClusterTests); ACK, SYNC and READ see StoredMessageTests.
        let requests: [(op: UInt32, body: String, code: String)] = [
            (Op.sub, #"{"topics":"t"}"#, "bad_body"),
            (Op.unsub, "not json", "bad_body"),
            (Op.subOps, "abc", "bad_body"),
            (Op.unsubOps, "abc", "bad_body"),
        ]
        for (index, request) in requests.enumerated() {
            try client.send(op: request.op, seq: UInt32(100 + index), text: request.body)
            let reply = try #require(try await client.readFrame(), "closed after op \(request.op)")
            #expect(reply.op == Op.error, "op \(request.op): \(reply)")
            #expect(reply.errorCode == request.code, "op \(request.op): \(reply)")
            #expect(number(reply.json?["op"]) == Double(request.op), "op \(request.op): \(reply)")
            #expect(try await client.heartbeat(seq: UInt32(200 + index)) == 0, "after op \(request.op)")
        }
    }

    @Test("AUTH + HEARTBEAT split into two writes at every byte boundary")
    func splitAtEveryBoundary() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        for cut in 1..<200 {
            let bytes =
                Wire.frame(op: Op.auth, seq: 1, text: authBody(mid: "split", key: String(format: "k%03d", cut)))
                + Wire.frame(op: Op.heartbeat, seq: 2)
            if cut >= bytes.count { break }
            let client = try await WireClient.connect(gateway)
            try client.sendRaw(Array(bytes[..<cut]))
            try await pause(0.01)
            try client.sendRaw(Array(bytes[cut...]))
            let first = try await client.readFrame()
            #expect(first?.op == Op.authReply && first?.seq == 1, "cut at \(cut): \(String(describing: first))")
            let second = try await client.readFrame()
            #expect(second?.op == Op.heartbeatReply && second?.seq == 2, "cut at \(cut): \(String(describing: second))")
            client.close()
        }
        // And a HEARTBEAT split at each of its 15 inner boundaries on one authenticated connection.
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "split", key: "hb")
        for cut in 1..<16 {
            let bytes = Wire.frame(op: Op.heartbeat, seq: UInt32(cut))
            try client.sendRaw(Array(bytes[..<cut]))
            try await pause(0.01)
            try client.sendRaw(Array(bytes[cut...]))
            let reply = try await client.readFrame()
            #expect(reply?.op == Op.heartbeatReply && reply?.seq == UInt32(cut), "cut at \(cut): \(String(describing: reply))")
        }
    }

    @Test("AUTH and HEARTBEAT sent one byte at a time")
    func oneByteAtATime() async throws {
        // Byte-sized writes from a test thread can be slow on a loaded machine: this test is about framing, not the
        // handshake timeout.
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_HANDSHAKE_TIMEOUT": "60"])
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        for byte in Wire.frame(op: Op.auth, seq: 11, text: authBody(mid: "slow", key: "k", roomID: "r1")) {
            try client.sendRaw([byte])
            try await pause(0.002)
        }
        let reply = try #require(try await client.readFrame())
        #expect(reply.op == Op.authReply && reply.seq == 11, "\(reply)")
        for byte in Wire.frame(op: Op.heartbeat, seq: 12) {
            try client.sendRaw([byte])
            try await pause(0.002)
        }
        let beat = try #require(try await client.readFrame())
        #expect(beat.op == Op.heartbeatReply && beat.seq == 12, "\(beat)")
        #expect(beat.roomCount == 1, "alone in room r1: \(beat)")
    }

    @Test("Frames coalesced in one write get their replies in order")
    func coalesced() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try client.sendRaw(
            Wire.frame(op: Op.auth, seq: 1, text: authBody(mid: "co", key: "k"))
                + Wire.frame(op: Op.heartbeat, seq: 2) + Wire.frame(op: Op.heartbeat, seq: 3))
        var replies: [Frame] = []
        for _ in 0..<3 { replies.append(try #require(try await client.readFrame())) }
        #expect(replies.map(\.op) == [Op.authReply, Op.heartbeatReply, Op.heartbeatReply], "\(replies)")
        #expect(replies.map(\.seq) == [1, 2, 3], "\(replies)")

        // Three different control frames in one write.
        try client.sendRaw(
            Wire.frame(op: Op.changeRoom, seq: 10, text: #"{"room_id":"co-room"}"#)
                + Wire.frame(op: Op.subOps, seq: 11, text: "1000,1001")
                + Wire.frame(op: Op.heartbeat, seq: 12))
        let room = try #require(try await client.readFrame())
        #expect(room.op == Op.changeRoomReply && room.seq == 10, "\(room)")
        #expect(room.json?["room_id"] as? String == "co-room", "\(room)")
        let sub = try #require(try await client.readFrame())
        #expect(sub.op == Op.subOpsReply && sub.seq == 11 && sub.text == "1000,1001", "\(sub)")
        let beat = try #require(try await client.readFrame())
        #expect(beat.op == Op.heartbeatReply && beat.seq == 12 && beat.roomCount == 1, "\(beat)")

        // 200 heartbeats in one write: 200 replies, in order.
        try client.sendRaw((1...200).flatMap { Wire.frame(op: Op.heartbeat, seq: UInt32(1000 + $0)) })
        var seqs: [UInt32] = []
        for _ in 1...200 {
            guard let frame = try await client.readFrame(), frame.op == Op.heartbeatReply else { break }
            seqs.append(frame.seq)
        }
        #expect(seqs == (1...200).map { UInt32(1000 + $0) })
    }
}
