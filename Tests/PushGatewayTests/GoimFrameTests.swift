// goim compatibility (SPEC §3 "goim compatibility"; issues 4 and 10): the client frames as goim's clients send
// them: goim's AUTH body, CHANGE_ROOM with a bare room id, SEND_MSG.
import Foundation
import Testing

@Suite("goim compatibility: client frames", .serialized, .timeLimit(.minutes(1)))
struct GoimFrameTests {
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
