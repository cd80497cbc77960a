// The HTTP/2 client against a real HTTP/2 server (Tests/Fakes/h2_echo_server.py, Python's h2 over ssl) on loopback:
// real sockets, real TLS with a test CA, nothing mocked.
import Foundation
import Glibc
import Logging
import PushPosix
import Testing

private typealias Outcome = Result<HTTP2Response, HTTP2Error>

/// A client of `server` on a fresh loop: host `localhost` (SNI and the name checked) at 127.0.0.1, trusting the
/// test CA.
private func makeClient(
    _ server: H2Server?, host: String = "localhost", tls: Bool = true, port: UInt16? = nil,
    _ adjust: (inout HTTP2Client.Options) -> Void = { _ in }
) throws -> (EventLoop, HTTP2Client) {
    Posix.ignore(SIGPIPE)  // as pushgw's processes do: OpenSSL writes with write(2)
    let loop = try EventLoop(capacity: 4096)
    var options = HTTP2Client.Options(tls: tls, address: "127.0.0.1", connectTimeout: 3)
    if tls { options.caFile = try H2Certificates.shared().caFile }
    adjust(&options)
    let client = try HTTP2Client(
        loop: loop, host: host, port: Int(port ?? server?.port ?? 0), options: options, logger: Logger(label: "test"))
    return (loop, client)
}

/// One request, the loop run until its answer (at most `seconds`).
private func call(
    _ loop: EventLoop, _ client: HTTP2Client, _ path: String, method: String = "GET",
    headers: [(name: String, value: String)] = [], body: [UInt8] = [], timeout: Double = 3, atMost seconds: Double = 5
) -> Outcome? {
    var outcome: Outcome?
    client.request(method: method, path: path, headers: headers, body: body, timeout: timeout) { outcome = $0 }
    runLoop(loop, atMost: seconds) { outcome != nil }
    return outcome
}

/// What the server saw (`GET /stats`).
private func stats(_ loop: EventLoop, _ client: HTTP2Client) -> [String: Any] {
    guard case .success(let response) = call(loop, client, "/stats") else { return [:] }
    return json(response)
}

private func failure(_ outcome: Outcome?) -> HTTP2Error? {
    if case .failure(let error) = outcome { return error }
    return nil
}

@Suite(.serialized) struct HTTP2ClientTests {
    /// A request over TLS is answered with the status it asks for, its headers and body echoed, the response's
    /// headers in lower case; `:authority` is the host and port.
    @Test func oneRequest() throws {
        let server = try H2Server()
        let (loop, client) = try makeClient(server)
        let outcome = call(
            loop, client, "/hello?x=1", method: "POST", headers: [("X-Want-Status", "201"), ("X-Test", "abc")],
            body: Array("ping".utf8))
        let response = try #require(try outcome?.get())
        #expect(response.status == 201)
        #expect(response.header("content-type") == "application/json")
        #expect(response.header("x-served-by") == "h2-echo")
        let echo = json(response)
        #expect(echo["method"] as? String == "POST")
        #expect(echo["path"] as? String == "/hello?x=1")
        let headers = (echo["headers"] as? [[String]] ?? []).map { ($0[0], $0[1]) }
        #expect(headers.contains { $0 == (":authority", "localhost:\(server.port)") })
        #expect(headers.contains { $0 == (":scheme", "https") })
        #expect(headers.contains { $0 == ("x-test", "abc") })
        #expect(headers.contains { $0 == ("content-length", "4") })
        #expect(echo["body"] as? String == Data("ping".utf8).base64EncodedString())
        #expect(client.requests == 1 && client.failures == 0 && client.reconnects == 0)
        #expect(client.isConnected)
    }

    /// 200 requests at once share one connection; the server's SETTINGS_MAX_CONCURRENT_STREAMS of 10 holds: never
    /// more than 10 streams open at the server, the rest queued in the client, all answered.
    @Test func concurrentRequestsStayWithinTheServersLimit() throws {
        let server = try H2Server(["--max-streams", "10"])
        let (loop, client) = try makeClient(server)
        var statuses: [Int: Int] = [:]
        var answered = 0
        for index in 0..<200 {
            client.request(method: "GET", path: "/r\(index)", headers: [("x-delay-ms", "10")], timeout: 10) { outcome in
                answered += 1
                if case .success(let response) = outcome, json(response)["path"] as? String == "/r\(index)" {
                    statuses[response.status, default: 0] += 1
                }
            }
        }
        #expect(client.queued == 200)
        #expect(runLoop(loop, atMost: 10) { answered == 200 })
        #expect(statuses == [200: 200])
        let seen = stats(loop, client)
        #expect(seen["max_open"] as? Int == 10)
        #expect(seen["connections"] as? Int == 1)
        #expect(client.failures == 0)
    }

    /// A 100 KB body goes out and comes back whole (both ways past the initial 64 KB flow-control window).
    @Test func largeBodyIsEchoed() throws {
        let server = try H2Server()
        let (loop, client) = try makeClient(server)
        let body = (0..<100 * 1024).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        let response = try #require(try call(loop, client, "/upload", method: "PUT", body: body)?.get())
        #expect(response.status == 200)
        let echoed = Data(base64Encoded: json(response)["body"] as? String ?? "") ?? Data()
        #expect(echoed.count == body.count)
        #expect(Array(echoed) == body)
    }

    /// A server killed with a request in flight fails it with `.connectionLost`, saying it may have been sent; the
    /// next request connects again, to the server restarted on the same port.
    @Test func killedServerFailsInFlightAndNextRequestReconnects() throws {
        var server = try H2Server()
        let port = server.port
        let (loop, client) = try makeClient(server)
        #expect(try call(loop, client, "/first")?.get().status == 200)

        var outcome: Outcome?
        client.request(method: "GET", path: "/slow", headers: [("x-delay-ms", "5000")], timeout: 5) { outcome = $0 }
        let killer = LoopTimer(loop: loop) { server.kill() }
        killer.start(after: 0.3)
        #expect(runLoop(loop, atMost: 3) { outcome != nil })
        let error = try #require(failure(outcome))
        #expect(error.code == .connectionLost, "\(error)")
        #expect(error.mayHaveBeenSent)
        #expect(!client.isConnected)

        server = try H2Server(port: port)
        #expect(try call(loop, client, "/again")?.get().status == 200)
        #expect(client.reconnects == 1)
        #expect(client.requests == 3 && client.failures == 1)
    }

    /// A stream past its timeout is reset and fails with `.timeout` (sent); the connection goes on. A request still
    /// queued behind the server's limit of one stream fails unsent.
    @Test func timeouts() throws {
        let server = try H2Server(["--max-streams", "1"])
        let (loop, client) = try makeClient(server)
        let started = Date()
        let slow = call(loop, client, "/slow", headers: [("x-delay-ms", "3000")], timeout: 0.3)
        let error = try #require(failure(slow))
        #expect(error.code == .timeout && error.mayHaveBeenSent, "\(error)")
        #expect(Date().timeIntervalSince(started) < 1.5)
        #expect(try call(loop, client, "/fast")?.get().status == 200)

        var first: Outcome?
        var second: Outcome?
        client.request(method: "GET", path: "/one", headers: [("x-delay-ms", "700")], timeout: 3) { first = $0 }
        client.request(method: "GET", path: "/two", timeout: 0.3) { second = $0 }
        #expect(runLoop(loop, atMost: 3) { first != nil && second != nil })
        #expect(try first?.get().status == 200)
        let queued = try #require(failure(second))
        #expect(queued.code == .timeout && !queued.mayHaveBeenSent, "\(queued)")
        #expect(client.reconnects == 0)
    }

    /// After two answers the server sends GOAWAY naming the last: the requests above it are retried, in order, on
    /// new connections; each request is answered exactly once.
    @Test func goAwayRetriesTheStreamsNotProcessed() throws {
        let server = try H2Server(["--goaway-after", "2"])
        let (loop, client) = try makeClient(server)
        var outcomes: [String: Outcome] = [:]
        for index in 1...5 { client.request(method: "GET", path: "/g\(index)") { outcomes["/g\(index)"] = $0 } }
        #expect(runLoop(loop, atMost: 5) { outcomes.count == 5 })
        var connectionOf: [String: Int] = [:]
        for (path, outcome) in outcomes {
            let response = try #require(try? outcome.get(), "\(path): \(outcome)")
            #expect(response.status == 200)
            connectionOf[path] = json(response)["connection"] as? Int
        }
        #expect(connectionOf == ["/g1": 1, "/g2": 1, "/g3": 2, "/g4": 2, "/g5": 3])
        #expect(client.reconnects == 2 && client.failures == 0)
        let seen = stats(loop, client)
        #expect(seen["paths"] as? [String: Int] == ["/g1": 1, "/g2": 1, "/g3": 1, "/g4": 1, "/g5": 1])
    }

    /// A certificate from a CA the client does not trust, or for another name, is refused: `.certificateRejected`,
    /// with OpenSSL's reason, never sent.
    @Test func untrustedOrMisnamedCertificateIsRefused() throws {
        let certificates = try H2Certificates.shared()
        let server = try H2Server(certificate: (certificates.otherCertFile, certificates.otherKeyFile))
        let (loop, client) = try makeClient(server)
        let error = try #require(failure(call(loop, client, "/x")))
        #expect(error.code == .certificateRejected, "\(error)")
        #expect(error.detail.contains("local issuer"), "\(error.detail)")
        #expect(!error.mayHaveBeenSent)

        let good = try H2Server()
        let (otherLoop, misnamed) = try makeClient(good, host: "push.example.com")
        let mismatch = try #require(failure(call(otherLoop, misnamed, "/x")))
        #expect(mismatch.code == .certificateRejected && mismatch.detail.contains("mismatch"), "\(mismatch)")
    }

    /// A TLS server that does not offer h2 in ALPN is refused: `.alpnRefused`.
    @Test func serverWithoutH2IsRefused() throws {
        let server = try H2Server(["--alpn", "http/1.1"])
        let (loop, client) = try makeClient(server)
        let error = try #require(failure(call(loop, client, "/x")))
        #expect(error.code == .alpnRefused, "\(error)")
        #expect(!error.mayHaveBeenSent)
    }

    /// Cleartext HTTP/2 with prior knowledge (h2c) when TLS is off: `:scheme` http.
    @Test func cleartextH2C() throws {
        let server = try H2Server(["--plain"])
        let (loop, client) = try makeClient(server, tls: false)
        let response = try #require(try call(loop, client, "/plain")?.get())
        #expect(response.status == 200)
        let headers = (json(response)["headers"] as? [[String]] ?? []).map { ($0[0], $0[1]) }
        #expect(headers.contains { $0 == (":scheme", "http") })
    }

    /// Nothing listening: `.connectFailed`, never sent.
    @Test func refusedConnection() throws {
        let server = try H2Server()
        let port = server.port
        server.kill()
        let (loop, client) = try makeClient(server, port: port)
        let error = try #require(failure(call(loop, client, "/x")))
        #expect(error.code == .connectFailed && !error.mayHaveBeenSent, "\(error)")
    }

    /// A stream the server resets with REFUSED_STREAM was not processed: it is retried, up to `maxAttempts`
    /// streams, then fails with `.refused`, unsent. One reset with INTERNAL_ERROR fails at once with `.streamReset`,
    /// perhaps sent. The connection stays.
    @Test func streamsResetByTheServer() throws {
        let server = try H2Server()
        let (loop, client) = try makeClient(server) { $0.maxAttempts = 3 }
        let refused = try #require(failure(call(loop, client, "/refused", headers: [("x-reset", "7")])))
        #expect(refused.code == .refused && !refused.mayHaveBeenSent, "\(refused)")
        let reset = try #require(failure(call(loop, client, "/reset", headers: [("x-reset", "2")])))
        #expect(reset.code == .streamReset && reset.mayHaveBeenSent, "\(reset)")
        #expect(reset.detail.contains("INTERNAL_ERROR"), "\(reset.detail)")
        #expect(stats(loop, client)["paths"] as? [String: Int] == ["/refused": 3, "/reset": 1])
        #expect(client.reconnects == 0 && client.failures == 2)
    }

    /// A response longer than `maxResponseBytes` is cut off (stream reset) and fails with `.responseTooLarge`; a
    /// full queue refuses a request at once with `.overloaded`, delivered after `request` returned.
    @Test func boundsOnResponsesAndTheQueue() throws {
        let server = try H2Server()
        let (loop, client) = try makeClient(server) {
            $0.maxResponseBytes = 1000
            $0.maxQueued = 1
        }
        var big: Outcome?
        var overflow: Outcome?
        client.request(method: "POST", path: "/big", body: [UInt8](repeating: 65, count: 4000)) { big = $0 }
        client.request(method: "GET", path: "/second") { overflow = $0 }
        #expect(overflow == nil, "completed inside request()")
        #expect(runLoop(loop, atMost: 3) { big != nil && overflow != nil })
        #expect(failure(big)?.code == .responseTooLarge)
        #expect(failure(overflow)?.code == .overloaded && failure(overflow)?.mayHaveBeenSent == false)
        #expect(try call(loop, client, "/small")?.get().status == 200)
    }

    /// A server that accepts TCP and never answers the ClientHello: `.connectFailed` once the connect timeout is
    /// over, never sent.
    @Test func connectTimeout() throws {
        let listener = try Posix.listen(host: "127.0.0.1", port: 0, ipv6: false)  // the kernel completes the TCP part
        defer { Posix.close(listener) }
        let (loop, client) = try makeClient(nil, port: Posix.localPort(listener)) { $0.connectTimeout = 0.4 }
        let started = Date()
        let error = try #require(failure(call(loop, client, "/x")))
        #expect(error.code == .connectFailed && !error.mayHaveBeenSent, "\(error)")
        #expect(error.detail.contains("not ready within"), "\(error.detail)")
        #expect(Date().timeIntervalSince(started) < 1.5)
    }

    /// `close()` fails the request in flight (may have been sent) and later ones; completions never run inside
    /// `request` or `close`.
    @Test func closeFailsWhatIsLeft() throws {
        let server = try H2Server()
        let (loop, client) = try makeClient(server)
        var inFlight: Outcome?
        client.request(method: "GET", path: "/slow", headers: [("x-delay-ms", "3000")]) { inFlight = $0 }
        var completedInsideClose = false
        let closer = LoopTimer(loop: loop) {
            client.close()
            completedInsideClose = inFlight != nil
        }
        closer.start(after: 0.3)
        #expect(runLoop(loop, atMost: 3) { inFlight != nil })
        #expect(!completedInsideClose)
        let error = try #require(failure(inFlight))
        #expect(error.code == .closed && error.mayHaveBeenSent, "\(error)")

        var later: Outcome?
        client.request(method: "GET", path: "/later") { later = $0 }
        #expect(failure(later) == nil, "completed inside request()")
        #expect(runLoop(loop, atMost: 1) { later != nil })
        #expect(failure(later)?.code == .closed)
    }
}
