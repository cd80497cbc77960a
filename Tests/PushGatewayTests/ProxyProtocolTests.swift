// The PROXY protocol on the client listeners (SPEC §8, `server.proxy_protocol`): the header's source address is
// the client's for bans, limits and `conns`; a connection without a valid header is closed; the header comes before
// TLS; the HTTP API takes none. The connections themselves are all to 127.0.0.1: only the headers claim other
// addresses.
import Foundation
import Testing

extension WireClient {
    /// Whether the gateway closes this connection without a frame within `timeout` (sending nothing itself, so a
    /// connection that stays open has done nothing an automatic ban would count); false when it stays open.
    func closedWithoutFrame(timeout: Double = 1) async throws -> Bool {
        switch try await read(timeout: timeout) {
        case .closed: return true
        case .timedOut: return false
        case .frame(let frame): throw TestError("expected a silent close, got \(frame)")
        }
    }
}

@Suite("PROXY protocol", .timeLimit(.minutes(1)))
struct ProxyProtocolTests {
    @Test("PROXY v1 and v2 headers from IPv4 and IPv6 sources: AUTH and a push work, conns shows the header's address")
    func headers() async throws {
        let gateway = try await GatewayProcess.start(behindProxy)
        defer { gateway.stop() }
        // AWS's VPC endpoint TLV (type 0xEA, subtype 1): read past and ignored.
        let awsTLV: [UInt8] = [0xEA, 0x00, 0x05, 0x01] + Array("vpce".utf8)
        let cases: [(user: String, header: [UInt8], address: String)] = [
            ("v1-ipv4", Proxy.v1("203.0.113.7"), "203.0.113.7"),
            ("v1-ipv6", Proxy.v1("2001:db8::7"), "2001:db8::7"),
            ("v2-ipv4", Proxy.v2("203.0.113.8", tlvs: awsTLV), "203.0.113.8"),
            ("v2-ipv6", Proxy.v2("2001:db8:0:1::8"), "2001:db8:0:1::8"),
            ("v2-mapped", Proxy.v2("::ffff:198.51.100.9"), "198.51.100.9"),
        ]
        for (user, header, address) in cases {
            let client = try await WireClient.connect(gateway, proxy: header)
            #expect(number(try await client.auth(mid: .string(user), key: "k")["code"]) == 0, "\(user)")
            let push = try await gateway.push(pushBody(users: [user], op: 1001, payload: #"{"via":"proxy"}"#))
            #expect(push.status == 200 && push.online(user) == 1, "\(user): \(push)")
            try await client.expectMessage(op: 1001, body: Array(#"{"via":"proxy"}"#.utf8), "\(user)")
            #expect(try await gateway.connAddress(user) == address, "\(user)")
        }
        // The header and the AUTH in one write (HAProxy sends the header, then relays what the client sent at once).
        let auth = Wire.frame(op: Op.auth, seq: 5, text: authBody(mid: "one-write"))
        let together = try await WireClient.connect(gateway, proxy: Proxy.v1("203.0.113.77") + auth)
        #expect(number(try await together.authReply(seq: 5)["code"]) == 0)
        #expect(try await gateway.connAddress("one-write") == "203.0.113.77")
        #expect(try await together.heartbeat(seq: 6) == 0)
    }

    @Test("A v2 LOCAL header (the balancer's health check) and v1 UNKNOWN keep the socket's peer address")
    func localAndUnknown() async throws {
        let gateway = try await GatewayProcess.start(behindProxy)
        defer { gateway.stop() }
        let local = try await WireClient.connect(gateway, proxy: Proxy.v2Local, from: "127.0.0.3")
        #expect(number(try await local.auth(mid: "local", key: "k")["code"]) == 0)
        #expect(try await gateway.connAddress("local") == "127.0.0.3")
        let unknown = try await WireClient.connect(gateway, proxy: Array("PROXY UNKNOWN\r\n".utf8), from: "127.0.0.4")
        #expect(number(try await unknown.auth(mid: "unknown", key: "k")["code"]) == 0)
        #expect(try await gateway.connAddress("unknown") == "127.0.0.4")
    }

    @Test("No header, a malformed one, or none in time: closed without a frame and counted; the HTTP API takes none")
    func refused() async throws {
        let gateway = try await GatewayProcess.start(
            behindProxy.merging(["PUSHGW_LIMITS_HANDSHAKE_TIMEOUT": "1"]) { $1 })
        defer { gateway.stop() }
        let bare = try await WireClient.connect(gateway)
        try await bare.expectClosedAtAccept("AUTH without a PROXY header")
        var badVersion = Proxy.v2("203.0.113.5")
        badVersion[12] = 0x31
        for (name, header) in [
            ("an address out of range", Array("PROXY TCP4 203.0.113.300 198.51.100.1 1 2\r\n".utf8)),
            ("a v1 line without CRLF", Array("PROXY TCP4 203.0.113.5 198.51.100.1 1 2\n".utf8)),
            ("v2 version 3", badVersion), ("TLS without a header", [0x16, 0x03, 0x01, 0x00, 0x05]),
        ] {
            let client = try await WireClient.connect(gateway, proxy: header)
            #expect(try await client.closedWithoutFrame(timeout: 3), "\(name)")
        }
        let silent = try await WireClient.connect(gateway, proxy: Array("PROXY TCP4 ".utf8))
        let started = Date()
        #expect(try await silent.closedWithoutFrame(timeout: 4), "half a header, then silence")
        #expect(Date().timeIntervalSince(started) > 0.5, "closed at the handshake timeout, not at once")
        try await gateway.expectCounter("pushgw_connections_closed_total{reason=\"proxy_refused\"}", atLeast: 6)
        #expect(try await gateway.http(HTTP.request("GET", "/healthz")).status == 200, "the HTTP API takes no header")
        #expect(try await gateway.admin("conns").last == "total 0")
    }

    @Test("The header comes before TLS and before the WebSocket upgrade: wss, tls and websocket all take it")
    func beforeTLSAndWebSocket() async throws {
        let gateway = try await GatewayProcess.start(behindProxy, webSocket: true, tls: true)
        defer { gateway.stop() }
        let ports = try #require(gateway.tlsPorts)
        let tls = try await offload { () -> TestSocket in
            let socket = try TestSocket(port: ports.tls)
            try socket.sendAll(Proxy.v2("203.0.113.30"))
            try socket.startTLS()
            return socket
        }
        let client = WireClient(socket: tls)
        #expect(number(try await client.auth(mid: "over-tls", key: "k")["code"]) == 0)
        #expect(try await gateway.connAddress("over-tls") == "203.0.113.30")
        #expect(try await gateway.conns("over-tls").first?.hasSuffix(" transport=tls") == true)

        for (user, port, secure, source) in [
            ("over-wss", ports.wss, true, "2001:db8::31"),
            ("over-ws", try #require(gateway.webSocketPort), false, "203.0.113.32"),
        ] {
            let socket = try await offload { () -> TestSocket in
                let socket = try TestSocket(port: port)
                try socket.sendAll(Proxy.v1(source))
                if secure { try socket.startTLS() }
                return socket
            }
            let webSocket = try await WebSocketClient.upgrade(HTTPConnection(socket: socket))
            try webSocket.send(op: Op.auth, seq: 2, text: authBody(mid: .string(user), key: "k"))
            #expect(number(try await webSocket.authReply(seq: 2)["code"]) == 0, "\(user)")
            #expect(try await gateway.connAddress(user) == source, "\(user)")
        }
    }

    @Test("A ban on the header's address or range closes that client at accept and disconnects it if open; others stay")
    func bansSeeTheHeader() async throws {
        let gateway = try await GatewayProcess.start(behindProxy)
        defer { gateway.stop() }
        let open = try await WireClient.connect(gateway, claiming: "203.0.113.68")
        try await open.auth(mid: "was-open", key: "k")
        try await gateway.ban(#"{"ip":"203.0.113.66"}"#)
        try await gateway.ban(#"{"ip":"2001:db8:66::/48"}"#)
        try await gateway.ban(#"{"ip":"203.0.113.68"}"#)
        try await open.expectBannedDisconnect("the open connection claiming the newly banned address")
        for banned in ["203.0.113.66", "2001:db8:66::1", "203.0.113.68"] {
            let client = try await WireClient.connect(gateway, claiming: banned)
            #expect(try await client.closedWithoutFrame(timeout: 3), "\(banned) is banned")
        }
        let fine = try await WireClient.connect(gateway, claiming: "203.0.113.67")
        #expect(number(try await fine.auth(mid: "neighbour", key: "k")["code"]) == 0)
        try await gateway.expectCounter("pushgw_banned_at_accept_total", atLeast: 3)
    }
}
