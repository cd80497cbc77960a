// The WebSocket listener (SPEC §2 "and later WebSocket binary messages", §3 port 3102): the RFC 6455 upgrade,
// pushgw frames in binary messages both ways, pings, closes, and errors.
import Foundation
import Testing

@Suite("WebSocket", .timeLimit(.minutes(1)))
struct WebSocketTests {
    @Test("The upgrade answers 101 with the RFC 6455 accept value and nothing else; the TCP listener still serves")
    func upgradeHandshake() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let port = try #require(gateway.webSocketPort)
        let http = try await offload { try HTTPConnection(port: port) }
        let response = try await http.roundTrip(
            upgradeRequest(headers: [("Connection", "keep-alive, Upgrade"), ("Upgrade", "WebSocket")]))
        #expect(response.status == 101, "\(response)")
        #expect(response.reason == "Switching Protocols")
        #expect(response.header("Upgrade")?.lowercased() == "websocket")
        #expect(response.header("Connection")?.lowercased() == "upgrade")
        #expect(response.header("Sec-WebSocket-Accept") == sampleWebSocketAccept)
        #expect(response.header("Sec-WebSocket-Protocol") == nil && response.header("Sec-WebSocket-Extensions") == nil)
        #expect(response.body.isEmpty && http.socket.inbound.isEmpty, "bytes after the 101: \(http.socket.inbound)")

        let tcp = try await WireClient.connect(gateway)
        try await tcp.auth(mid: "tcp-too")
    }

    @Test("AUTH in a binary message gets AUTH_REPLY as one binary message; HEARTBEAT gets HEARTBEAT_REPLY the same way")
    func authAndHeartbeat() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let client = try await WebSocketClient.connect(gateway)
        try client.send(
            op: Op.auth, seq: 5, text: authBody(mid: "w1", key: "browser", roomID: "live://1", platform: "web"))
        let message = try #require(try await client.readMessage())
        #expect(message.opcode == WSOp.binary && message.fin, "\(message)")
        let frames = try #require(message.frames, "not whole pushgw frames: \(message)")
        #expect(frames.count == 1, "one frame per message: \(frames)")
        let reply = try #require(frames.first)
        #expect(reply.op == Op.authReply && reply.seq == 5, "\(reply)")
        #expect(number(reply.json?["code"]) == 0)
        #expect(reply.json?["key"] as? String == "browser")

        for seq: UInt32 in [1, 77] {
            #expect(try await client.heartbeat(seq: seq) == 1, "room count: this connection")
        }
        let online = try await gateway.userInfo("w1")
        #expect(online["online"] as? Bool == true, "\(online)")
    }

    @Test("Frames may span messages and fragments, several may share one; a ping between fragments gets its pong")
    func framesAcrossMessages() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let client = try await WebSocketClient.connect(gateway)
        let auth = Wire.frame(op: Op.auth, seq: 1, text: authBody(mid: "w2", key: "k", platform: "web"))
        // AUTH in three fragments of one message, a ping among them, and one byte of a HEARTBEAT at the end.
        let beat = Wire.frame(op: Op.heartbeat, seq: 2)
        try client.sendRaw(
            wsFrame(opcode: WSOp.binary, payload: Array(auth[..<5]), fin: false)
                + wsFrame(opcode: WSOp.continuation, payload: Array(auth[5..<20]), fin: false)
                + wsFrame(opcode: WSOp.ping, payload: Array("mid-message".utf8))
                + wsFrame(opcode: WSOp.continuation, payload: Array(auth[20...]) + beat.prefix(1), fin: true))
        let pong = try #require(try await client.readMessage())
        #expect(pong.opcode == WSOp.pong && pong.payload == Array("mid-message".utf8), "\(pong)")
        let reply = try #require(try await client.readFrame())
        #expect(reply.op == Op.authReply && reply.seq == 1, "\(reply)")
        // The rest of the HEARTBEAT in a second message, then two HEARTBEATs in one message.
        try client.sendFrame(opcode: WSOp.binary, payload: Array(beat.dropFirst()))
        let first = try #require(try await client.readFrame())
        #expect(first.op == Op.heartbeatReply && first.seq == 2, "\(first)")
        try client.sendFrame(
            opcode: WSOp.binary, payload: Wire.frame(op: Op.heartbeat, seq: 3) + Wire.frame(op: Op.heartbeat, seq: 4))
        for seq: UInt32 in [3, 4] {
            let reply = try #require(try await client.readFrame())
            #expect(reply.op == Op.heartbeatReply && reply.seq == seq, "each reply in its own message: \(reply)")
        }
    }

    @Test("A ping before and after AUTH gets a pong with the same payload; a pong from the client is ignored")
    func pingPong() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let client = try await WebSocketClient.connect(gateway)
        for (index, payload) in [[], Array("hello".utf8), Array(repeating: UInt8(0xA5), count: 125)].enumerated() {
            if index == 1 { try await client.auth(mid: "p") }
            try client.sendFrame(opcode: WSOp.pong, payload: [1, 2])
            try client.sendFrame(opcode: WSOp.ping, payload: payload)
            let pong = try #require(try await client.readMessage())
            #expect(pong.opcode == WSOp.pong && pong.payload == payload, "\(pong)")
        }
        #expect(try await client.heartbeat(seq: 9) == 0)
    }

    @Test(
        "Pushes through the HTTP API arrive as one binary message per frame: transient, stored, large, to WS and TCP alike"
    )
    func pushArrives() async throws {
        // max_frame 128 KiB, so that a message can need the 64-bit WebSocket length.
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_MAX_FRAME": "131072"], webSocket: true)
        defer { gateway.stop() }
        let browser = try await WebSocketClient.connect(gateway)
        let phone = try await WireClient.connect(gateway)
        try await browser.auth(mid: "u-ws", key: "browser")
        try await phone.auth(mid: "u-ws", key: "phone")
        let conns = try await gateway.admin("conns u-ws")
        #expect(conns.contains { $0.contains("key=browser") && $0.hasSuffix(" transport=websocket") }, "\(conns)")
        #expect(conns.contains { $0.contains("key=phone") && $0.hasSuffix(" transport=tcp") }, "\(conns)")

        let transient = try await gateway.push(pushBody(users: ["u-ws"], op: 1001, payload: #"{"hi":"web"}"#))
        #expect(transient.status == 200 && transient.online("u-ws") == 2, "\(transient)")
        let message = try #require(try await browser.readMessage())
        #expect(message.opcode == WSOp.binary && message.fin, "\(message)")
        let frame = try #require(message.frames?.first)
        #expect(message.frames?.count == 1)
        #expect(frame.op == 1001 && frame.seq == 0 && frame.text == #"{"hi":"web"}"#, "\(frame)")
        try await phone.expectMessage(op: 1001, body: Array(#"{"hi":"web"}"#.utf8))

        let stored = try await gateway.push(storedPushBody(users: ["u-ws"], payload: #"{"n":1}"#))
        #expect(stored.status == 200, "\(stored)")
        let storedFrame = try #require(try await browser.readFrame())
        #expect(storedFrame.op == 1000 && storedFrame.seq == 1 && storedFrame.text == #"{"n":1}"#, "\(storedFrame)")

        // 16-bit and 64-bit WebSocket lengths.
        for size in [300, 70_000] {
            let payload = "\"" + String(repeating: "x", count: size) + "\""
            let response = try await gateway.push(pushBody(users: ["u-ws"], payload: payload))
            #expect(response.status == 200, "\(response)")
            let big = try #require(try await browser.readFrame())
            #expect(big.op == 1000 && big.body == Array(payload.utf8), "\(big.body.count) bytes")
        }

        let everyone = try await gateway.push(pushBody(all: true, op: 1002, payload: "[1]"))
        #expect(everyone.status == 200, "\(everyone)")
        let broadcast = try #require(try await browser.readFrame())
        #expect(broadcast.op == 1002 && broadcast.text == "[1]", "\(broadcast)")
    }

    @Test("A client close frame gets a close frame with the same status, then the socket is closed")
    func clientClose() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let client = try await WebSocketClient.connect(gateway)
        try await client.auth(mid: "bye", key: "k")
        try client.sendFrame(opcode: WSOp.close, payload: [0x03, 0xE8] + Array("done".utf8))
        let messages = try await client.readUntilClosed()
        #expect(messages.count == 1, "\(messages)")
        #expect(messages.first?.opcode == WSOp.close && messages.first?.closeCode == 1000, "\(messages)")
        let gone = try await eventually { (try await gateway.userInfo("bye"))["online"] as? Bool == false }
        #expect(gone, "the session is still listed after the close")
    }

    @Test("A malformed pushgw frame in a message: ERROR in a binary message, close frame 1002, socket closed")
    func malformedFrame() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let client = try await WebSocketClient.connect(gateway)
        try await client.auth(mid: "bad")
        try client.sendFrame(opcode: WSOp.binary, payload: Wire.frame(op: Op.heartbeat, seq: 1, headerLength: 20))
        let messages = try await client.readUntilClosed()
        #expect(messages.count == 2, "ERROR, then close: \(messages)")
        #expect(messages.first?.frames?.first?.errorCode == "bad_header", "\(messages)")
        #expect(messages.last?.opcode == WSOp.close && messages.last?.closeCode == 1002, "\(messages)")
        #expect(messages.last?.closeReason == "bad_header")
    }

    @Test("A first frame other than AUTH: ERROR auth_required, close 1008; kick: DISCONNECT, close 1000")
    func refusedAndKicked() async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let early = try await WebSocketClient.connect(gateway)
        try early.send(op: Op.heartbeat, seq: 1)
        let refused = try await early.readUntilClosed()
        #expect(refused.first?.frames?.first?.errorCode == "auth_required", "\(refused)")
        #expect(refused.count == 2 && refused.last?.closeCode == 1008, "\(refused)")

        let kicked = try await WebSocketClient.connect(gateway)
        try await kicked.auth(mid: "kick-me", key: "tab")
        let response = try await gateway.http(HTTP.request("DELETE", "/v1/users/kick-me/devices/tab"))
        #expect(response.status == 200, "\(response)")
        let messages = try await kicked.readUntilClosed()
        #expect(messages.count == 2, "DISCONNECT, then close: \(messages)")
        let disconnect = try #require(messages.first?.frames?.first)
        #expect(disconnect.op == Op.disconnect && disconnect.json?["reason"] as? String == "kicked", "\(disconnect)")
        #expect(messages.last?.opcode == WSOp.close && messages.last?.closeCode == 1000, "\(messages)")
    }

    @Test(
        "WebSocket violations get a close frame with their status, then the socket closes",
        arguments: WebSocketCase.violations)
    func violations(_ violation: WebSocketCase) async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let client = try await WebSocketClient.connect(gateway)
        try await client.auth(mid: "v")
        try client.sendRaw(violation.bytes)
        let messages = try await client.readUntilClosed()
        #expect(messages.count == 1, "\(messages)")
        #expect(
            messages.first?.opcode == WSOp.close && messages.first?.closeCode == UInt16(violation.status), "\(messages)"
        )
    }

    @Test(
        "A bad upgrade request gets an HTTP error with a JSON body, then the connection closes",
        arguments: WebSocketCase.badUpgrades)
    func badUpgrade(_ bad: WebSocketCase) async throws {
        let gateway = try await GatewayProcess.start(webSocket: true)
        defer { gateway.stop() }
        let port = try #require(gateway.webSocketPort)
        let http = try await offload { try HTTPConnection(port: port) }
        let response = try await http.roundTrip(bad.bytes)
        #expect(response.status == bad.status, "\(response)")
        #expect(response.errorCode == bad.code, "\(response)")
        #expect(response.header("Content-Type") == "application/json")
        if bad.status == 426 { #expect(response.header("Sec-WebSocket-Version") == "13") }
        if bad.status == 405 { #expect(response.header("Allow") == "GET") }
        #expect(try await http.expectClosed(), "not closed after the error")
    }

    @Test(
        "handshake_timeout covers the upgrade and AUTH: no request → closed; upgraded without AUTH → ERROR, close 1008")
    func handshakeTimeout() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_HANDSHAKE_TIMEOUT": "1"], webSocket: true)
        defer { gateway.stop() }
        let port = try #require(gateway.webSocketPort)
        let start = Date()
        let silent = try await offload { try HTTPConnection(port: port) }
        try silent.sendRaw(Array("GET /sub HTTP/1.1\r\nHost: x\r\n".utf8))
        let upgraded = try await WebSocketClient.connect(gateway)

        #expect(try await silent.expectClosed(timeout: 6), "half a request head kept the connection open")
        let messages = try await upgraded.readUntilClosed(timeout: 6)
        let elapsed = Date().timeIntervalSince(start)
        #expect(messages.first?.frames?.first?.errorCode == "handshake_timeout", "\(messages)")
        #expect(messages.count == 2 && messages.last?.closeCode == 1008, "\(messages)")
        #expect(elapsed >= 0.9 && elapsed < 5, "closed after \(elapsed) s with handshake_timeout = 1")
    }
}

/// Bytes a client sends and what they must get: an HTTP status and error code for an upgrade request, a close
/// status for bytes after the upgrade.
struct WebSocketCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let status: Int
    var code: String? = nil

    var testDescription: String { name }

    static let violations = [
        WebSocketCase(
            name: "unmasked frame",
            bytes: wsFrame(opcode: WSOp.binary, payload: Wire.frame(op: Op.heartbeat), masked: false),
            status: 1002),
        WebSocketCase(name: "text message", bytes: wsFrame(opcode: WSOp.text, payload: Array("{}".utf8)), status: 1003),
        WebSocketCase(
            name: "continuation first", bytes: wsFrame(opcode: WSOp.continuation, payload: [1]), status: 1002),
        WebSocketCase(
            name: "ping over 125 bytes", bytes: wsFrame(opcode: WSOp.ping, payload: Array(repeating: 0, count: 126)),
            status: 1002),
        WebSocketCase(
            name: "message over twice max_frame",
            bytes: Array(wsFrame(opcode: WSOp.binary, payload: Array(repeating: 0, count: 140_000)).prefix(14)),
            status: 1009),
    ]

    static let badUpgrades = [
        WebSocketCase(
            name: "no key", bytes: upgradeRequest(headers: [("Sec-WebSocket-Key", nil)]), status: 400,
            code: "bad_request"),
        WebSocketCase(
            name: "no Upgrade", bytes: upgradeRequest(headers: [("Upgrade", nil)]), status: 400, code: "bad_request"),
        WebSocketCase(
            name: "version 8", bytes: upgradeRequest(headers: [("Sec-WebSocket-Version", "8")]), status: 426,
            code: "upgrade_required"),
        WebSocketCase(name: "POST", bytes: upgradeRequest(method: "POST"), status: 405, code: "method_not_allowed"),
        WebSocketCase(
            name: "a TCP client on the WebSocket port", bytes: Wire.frame(op: Op.auth, seq: 1, text: authBody(mid: 1)),
            status: 400, code: "bad_request"),
    ]
}
