// TLS on the client listeners (SPEC §8): the §2 protocol, WebSocket and the HTTP API over TLS, on the worker's
// loop; the handshake inside `limits.handshake_timeout`; garbage and silence refused without harm to others.
import COpenSSL
import Foundation
import Testing

extension GatewayProcess {
    /// A TLS client connection on the `server.tls` listener, the chain verified for `host`.
    func tlsClient(
        _ context: TLSClientContext? = nil, host: String = "127.0.0.1", resuming: TLSClientSession? = nil
    ) async throws -> WireClient {
        guard let port = tlsPorts?.tls else { throw TestError("gateway started without TLS listeners") }
        let socket = try await offload {
            try TestSocket.tls(port: port, context: context, host: host, resuming: resuming)
        }
        return WireClient(socket: socket)
    }

    /// A WebSocket over TLS on the `server.wss` listener, upgraded.
    func wssClient() async throws -> WebSocketClient {
        guard let port = tlsPorts?.wss else { throw TestError("gateway started without TLS listeners") }
        let socket = try await offload { try TestSocket.tls(port: port) }
        return try await WebSocketClient.upgrade(HTTPConnection(socket: socket))
    }

    /// A keep-alive HTTPS connection on the `server.https` listener.
    func httpsConnection() async throws -> HTTPConnection {
        guard let port = tlsPorts?.https else { throw TestError("gateway started without TLS listeners") }
        return HTTPConnection(socket: try await offload { try TestSocket.tls(port: port) })
    }

    /// The value of `pushgw_connections_closed_total{reason="…"}` in `/metrics`.
    func closedTotal(_ reason: String) async throws -> Double? {
        let text = try await metrics().text
        let prefix = "pushgw_connections_closed_total{reason=\"\(reason)\"} "
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }
}

@Suite("TLS", .serialized, .timeLimit(.minutes(2)))
struct TLSTests {
    @Test(
        "Over TLS 1.3 and 1.2: the chain verifies against the test root for 127.0.0.1 and localhost; AUTH, a push from the plain HTTP API and heartbeats work; conns says tls",
        arguments: [nil, TLS1_2_VERSION])
    func protocolOverTLS(maxVersion: Int32?) async throws {
        let gateway = try await GatewayProcess.start(tls: true)
        defer { gateway.stop() }
        let context = try maxVersion.map { try TLSClientContext(maxVersion: $0) }
        let client = try await gateway.tlsClient(context)
        #expect(client.socket.tlsVersion == (maxVersion == nil ? "TLSv1.3" : "TLSv1.2"))
        let reply = try await client.auth(mid: "t1", key: "phone")
        #expect(number(reply["code"]) == 0 && reply["key"] as? String == "phone", "\(reply)")
        #expect(try await client.heartbeat(seq: 3) == 0)

        let push = try await gateway.push(pushBody(users: ["t1"], op: 1001, payload: #"{"over":"tls"}"#))
        #expect(push.status == 200 && push.online("t1") == 1, "\(push)")
        try await client.expectMessage(op: 1001, body: Array(#"{"over":"tls"}"#.utf8))
        #expect(try await client.heartbeat(seq: 4) == 0)

        // The same certificate names localhost too; a plain TCP client beside it is unaffected.
        let byName = try await gateway.tlsClient(context, host: "localhost")
        try await byName.auth(mid: "t1", key: "tablet")
        let plain = try await WireClient.connect(gateway)
        try await plain.auth(mid: "t1", key: "desk")
        let conns = try await gateway.admin("conns t1")
        #expect(conns.contains { $0.contains("key=phone") && $0.hasSuffix(" transport=tls") }, "\(conns)")
        #expect(conns.contains { $0.contains("key=desk") && $0.hasSuffix(" transport=tcp") }, "\(conns)")
    }

    @Test("A client frame that breaks the protocol gets its ERROR over TLS, then close_notify and the close")
    func protocolErrorThenCloseNotify() async throws {
        let gateway = try await GatewayProcess.start(tls: true)
        defer { gateway.stop() }
        let client = try await gateway.tlsClient()
        try client.sendRaw(Wire.frame(op: Op.auth, seq: 1, packetLength: 8))
        let frames = try await client.readUntilClosed()
        #expect(frames.map(\.errorCode) == ["bad_length"], "\(frames)")
        #expect(!client.socket.sawReset, "closed with close_notify, not reset")
    }

    @Test("WebSocket over TLS: the upgrade, AUTH and a heartbeat in binary messages, a push arrives as one message; conns says wss")
    func webSocketOverTLS() async throws {
        let gateway = try await GatewayProcess.start(tls: true)
        defer { gateway.stop() }
        let browser = try await gateway.wssClient()
        let reply = try await browser.auth(mid: "w-tls", key: "browser")
        #expect(number(reply["code"]) == 0, "\(reply)")
        #expect(try await browser.heartbeat(seq: 9) == 0)
        let push = try await gateway.push(pushBody(users: ["w-tls"], op: 1002, payload: #"{"via":"wss"}"#))
        #expect(push.status == 200 && push.online("w-tls") == 1, "\(push)")
        let message = try #require(try await browser.readMessage())
        #expect(message.opcode == WSOp.binary && message.frames?.count == 1, "\(message)")
        let frame = try #require(message.frames?.first)
        #expect(frame.op == 1002 && frame.text == #"{"via":"wss"}"#, "\(frame)")
        let conns = try await gateway.admin("conns w-tls")
        #expect(conns.contains { $0.hasSuffix(" transport=wss") }, "\(conns)")
    }

    @Test("A 60 KB push posted over HTTPS (many records in) reaches a TLS client whole (many records out); keep-alive holds")
    func largePushAcrossRecords() async throws {
        let gateway = try await GatewayProcess.start(tls: true)
        defer { gateway.stop() }
        let client = try await gateway.tlsClient()
        try await client.auth(mid: "big", key: "k")
        let https = try await gateway.httpsConnection()
        defer { https.close() }
        let health = try await https.roundTrip(HTTP.request("GET", "/healthz"))
        #expect(health.status == 200, "\(health)")
        let text = String((0..<60_000).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        let body = pushBody(users: ["big"], op: 1003, payload: jsonQuote(text))
        let push = try await https.roundTrip(HTTP.request("POST", "/v1/push", body: body))
        #expect(push.status == 200 && push.online("big") == 1, "\(push)")
        let frame = try #require(try await client.readFrame())
        #expect(frame.op == 1003 && frame.body == Array(jsonQuote(text).utf8), "\(frame.body.count) bytes")
        // Several pushes back to back on the same HTTPS connection, each answered, each delivered in order.
        for n in 1...5 {
            let body = pushBody(users: ["big"], op: 1003, payload: "\(n)")
            let response = try await https.roundTrip(HTTP.request("POST", "/v1/push", body: body))
            #expect(response.status == 200, "\(response)")
        }
        for n in 1...5 { try await client.expectMessage(op: 1003, body: Array("\(n)".utf8)) }
    }

    @Test("A client that never sends a ClientHello is closed by limits.handshake_timeout, on the TLS and the HTTPS listener; one that finishes TLS but never AUTHs gets ERROR handshake_timeout over TLS")
    func silentClientTimesOut() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_HANDSHAKE_TIMEOUT": "1"], tls: true)
        defer { gateway.stop() }
        let ports = try #require(gateway.tlsPorts)
        for port in [ports.tls, ports.https, ports.wss] {
            let silent = try await offload { try TestSocket(port: port) }
            let started = Date()
            let closed = try await offload { try HTTPConnection(socket: silent).expectClosed(timeoutSync: 5) }
            let took = Date().timeIntervalSince(started)
            #expect(closed && silent.inbound.isEmpty, "port \(port): closed \(closed), bytes \(silent.inbound)")
            #expect(took >= 0.8 && took < 2.5, "port \(port): closed after \(took) s with a 1 s handshake timeout")
        }
        let quiet = try await gateway.tlsClient()
        let frames = try await quiet.readUntilClosed(timeout: 4)
        #expect(frames.map(\.errorCode) == ["handshake_timeout"], "\(frames)")
        // Client connections are counted by reason (HTTP connections are not): TLS, WSS, and the quiet one.
        #expect(try await eventually { try await gateway.closedTotal("handshake_timeout") == 3 })
    }

    @Test("Garbage instead of a ClientHello is closed at once and counted as tls_handshake_failed; the gateway still serves TLS clients")
    func garbageIsRefused() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_AUTH_SECRET": "register-secret"], tls: true)
        defer { gateway.stop() }
        let ports = try #require(gateway.tlsPorts)
        let garbage: [[UInt8]] = [
            Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
            Wire.frame(op: Op.auth, seq: 1, text: authBody(mid: "plain-on-tls")),
            [0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00],  // a handshake record, but a ServerHello
        ]
        for bytes in garbage {
            let socket = try await offload { try TestSocket(port: ports.tls) }
            try socket.sendAll(bytes)
            let started = Date()
            let closed = try await offload { try HTTPConnection(socket: socket).expectClosed(timeoutSync: 3) }
            #expect(closed && Date().timeIntervalSince(started) < 1, "closed \(closed) after \(Date().timeIntervalSince(started)) s")
        }
        let client = try await gateway.tlsClient()
        try await client.auth(mid: "after-garbage")
        #expect(try await client.heartbeat() == 0)
        #expect(try await eventually { try await gateway.closedTotal("tls_handshake_failed") == 3 })
    }

    @Test("tls.min_version 1.3 refuses a TLS 1.2 client and serves a TLS 1.3 one")
    func minimumVersion() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_TLS_MIN_VERSION": "1.3"], tls: true)
        defer { gateway.stop() }
        let old = try TLSClientContext(maxVersion: TLS1_2_VERSION)
        await #expect(throws: (any Error).self) { _ = try await gateway.tlsClient(old) }
        let client = try await gateway.tlsClient()
        #expect(client.socket.tlsVersion == "TLSv1.3")
        try await client.auth(mid: "modern")
    }

    @Test("200 ClientHellos waiting at once are handshaken at most 64 per loop iteration, the rest queued (counted in /metrics), and all of them complete and AUTH")
    func handshakeStormIsSpreadOverIterations() async throws {
        let gateway = try await GatewayProcess.start(tls: true)
        defer { gateway.stop() }
        let ports = try #require(gateway.tlsPorts)
        let worker = try #require(try await gateway.waitForWorkers(1).first)
        // The worker stopped while the ClientHellos come: when it goes on, all 200 are ready in one iteration.
        kill(worker, SIGSTOP)
        let sockets: [TestSocket]
        do {
            sockets = try await offload {
                try (0..<200).map { _ in
                    let socket = try TestSocket(port: ports.tls, timeout: 20)
                    try socket.sendClientHello()
                    return socket
                }
            }
        } catch {
            kill(worker, SIGCONT)
            throw error
        }
        kill(worker, SIGCONT)
        try await offload { for socket in sockets { try socket.finishTLS() } }
        for (index, socket) in sockets.enumerated() where index % 20 == 0 {
            let client = WireClient(socket: socket)
            try await client.auth(mid: .string("storm\(index)"))
            #expect(try await client.heartbeat() == 0)
        }
        var text = ""
        let deferred = try await eventually {
            text = try await gateway.metrics().text
            return (metricValue(text, "pushgw_tls_handshakes_deferred_total") ?? 0) >= 1
        }
        #expect(deferred, "\(text.split(separator: "\n").filter { $0.contains("handshake") })")
    }

    @Test(
        "Session tickets: a reconnect resumes the first connection's session on either worker (keys from the master), and each resumed connection gets a new ticket that the next reconnect resumes with, over TLS 1.3 and 1.2",
        arguments: [nil, TLS1_2_VERSION])
    func resumptionAcrossWorkers(maxVersion: Int32?) async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"], tls: true)
        defer { gateway.stop() }
        try await gateway.waitForWorkers(2)
        let context = try maxVersion.map { try TLSClientContext(maxVersion: $0) } ?? TLSClientContext()
        let first = try await gateway.tlsClient(context)
        #expect(!first.socket.tlsResumed)
        try await first.auth(mid: "resume", key: "first")  // TLS 1.3: the ticket comes before the AUTH_REPLY
        var session = try #require(first.socket.tlsSession)
        first.close()

        var nodes: Set<String> = []
        var tries = 0
        while nodes.count < 2 && tries < 24 {
            tries += 1
            let again = try await gateway.tlsClient(context, resuming: session)
            defer { again.close() }
            #expect(again.socket.tlsResumed, "try \(tries): a full handshake instead of a resumption")
            try await again.auth(mid: "resume", key: "try\(tries)")
            // As a phone does: the next reconnect offers the newest ticket, the one this resumed connection got.
            let newer = try #require(again.socket.tlsSession)
            #expect(!newer.ticket.isEmpty && newer.ticket != session.ticket, "try \(tries): no new ticket")
            session = newer
            let devices = try await gateway.deviceNodes("resume")
            if let node = devices["try\(tries)"] { nodes.insert(node) }
        }
        #expect(nodes.count == 2, "reconnects reached \(nodes.count) worker(s) in \(tries) tries: \(nodes)")
    }

    @Test(
        "SIGHUP with new certificate files and an unchanged configuration: the workers reload it in place, an open TLS connection is not dropped, new connections get the new certificate and resume sessions; unusable files are refused and the workers stay"
    )
    func reloadCertificate() async throws {
        let certificates = try TestCertificates.shared()
        let first = try certificates.makeLeaf(serial: 2001)
        let second = try certificates.makeLeaf(serial: 2002)
        let files = FileManager.default
        let directory = certificates.directory.appendingPathComponent("reload-\(UUID().uuidString.prefix(8))")
        try files.createDirectory(at: directory, withIntermediateDirectories: true)
        let chain = directory.appendingPathComponent("chain.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        func install(_ leaf: (chain: String, key: String)) throws {
            for (from, to) in [(leaf.chain, chain), (leaf.key, key)] {
                try? files.removeItem(atPath: to)
                try files.copyItem(atPath: from, toPath: to)
            }
        }
        try install(first)
        let gateway = try await GatewayProcess.start(
            ["PUSHGW_TLS_CERT": chain, "PUSHGW_TLS_KEY": key, "PUSHGW_SERVER_DRAIN_TIMEOUT": "2"], tls: true)
        defer { gateway.stop() }
        let workers = try await gateway.waitForWorkers(1)
        let client = try await gateway.tlsClient()
        #expect(client.socket.peerSerial == 2001)
        try await client.auth(mid: "reload-tls", key: "phone")
        let session = try #require(client.socket.tlsSession)

        try install(second)
        gateway.process.signal(SIGHUP)
        var serial: Int?
        let renewed = try await eventually(timeout: 5) {
            let fresh = try await gateway.tlsClient()
            defer { fresh.close() }
            serial = fresh.socket.peerSerial
            return serial == 2002
        }
        #expect(renewed, "new connections still see certificate \(String(describing: serial)) after SIGHUP")
        #expect(gateway.log.contains("TLS certificate reloaded"), "log:\n\(gateway.log.suffix(2000))")
        // Nothing was replaced or drained: the open connection goes on, past the drain timeout.
        try await pause(2.5)
        #expect(gateway.workerPIDs == workers)
        #expect(try await client.heartbeat(seq: 1) == 0)
        let resumed = try await gateway.tlsClient(resuming: session)
        #expect(resumed.socket.tlsResumed, "a session of the old certificate still resumes")
        try await resumed.auth(mid: "reload-tls", key: "tablet")

        // A certificate file that cannot be used: the reload is refused, the worker and its certificate stay.
        try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: chain))
        gateway.process.signal(SIGHUP)
        #expect(try await eventually { gateway.log.contains("reload refused") }, "log:\n\(gateway.log.suffix(2000))")
        #expect(gateway.log.contains("tls.cert"), "the refusal names the key")
        try await pause(1.5)
        #expect(gateway.workerPIDs == workers)
        let still = try await gateway.tlsClient()
        #expect(still.socket.peerSerial == 2002)
        #expect(try await client.heartbeat(seq: 2) == 0)
    }

    @Test("POST /v1/register names the TLS and WebSocket-over-TLS listeners beside the plain ones")
    func registerNamesTLSListeners() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_AUTH_SECRET": "register-secret"], tls: true)
        defer { gateway.stop() }
        let ports = try #require(gateway.tlsPorts)
        var json: [String: Any]?
        // The node's entry in pg:nodes is written within its first refresh.
        let listed = try await eventually(timeout: 5) {
            let response = try await gateway.http(HTTP.request("POST", "/v1/register", body: #"{"user":"u","device":"d"}"#))
            json = response.json
            return (json?["tls"] as? [String]) == ["127.0.0.1:\(ports.tls)"]
        }
        #expect(listed, "\(String(describing: json))")
        #expect((json?["wss"] as? [String]) == ["127.0.0.1:\(ports.wss)"])
        #expect((json?["gateways"] as? [String]) == ["127.0.0.1:\(gateway.tcpPort)"])
    }

    @Test("A TLS listener whose certificate or key cannot be used stops the start, naming the key")
    func badCertificateStopsStart() async throws {
        let certificates = try TestCertificates.shared()
        let other = try certificates.makeLeaf(serial: 1999)
        let cases: [([String: String], String, ExitState)] = [
            (["PUSHGW_TLS_CERT": "/nonexistent/c.pem", "PUSHGW_TLS_KEY": certificates.keyFile], "tls.cert", .exited(1)),
            (["PUSHGW_TLS_CERT": certificates.chainFile, "PUSHGW_TLS_KEY": other.key], "tls.key", .exited(1)),
            (["PUSHGW_TLS_CERT": certificates.keyFile, "PUSHGW_TLS_KEY": certificates.keyFile], "tls.cert", .exited(1)),
            (["PUSHGW_TLS_KEY": certificates.keyFile], "tls.cert", .exited(2)),
        ]
        for (files, key, status) in cases {
            var overrides = files
            overrides["PUSHGW_SERVER_TLS"] = "127.0.0.1:\(try freeLoopbackPort())"
            let (state, log) = try await GatewayProcess.runToExit(overrides)
            #expect(state == status, "\(files): \(state); log:\n\(log.suffix(1000))")
            #expect(log.contains("\(key)"), "\(files): the message names \(key):\n\(log.suffix(1000))")
        }
    }
}
