// The HTTP API's framing (keep-alive, pipelining) and every error status (SPEC §3).
import Foundation
import Testing

/// Checks the SPEC's error shape: JSON {"error":{"code","message"}} with a JSON content type.
func expectErrorShape(_ response: HTTPResponse, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.header("content-type")?.contains("application/json") == true, "\(name): \(response)",
        sourceLocation: sourceLocation)
    #expect(response.errorCode.map { !$0.isEmpty } == true, "\(name): no error.code in \(response)",
        sourceLocation: sourceLocation)
    #expect(response.errorMessage != nil, "\(name): no error.message in \(response)", sourceLocation: sourceLocation)
}

@Suite("HTTP API", .timeLimit(.minutes(1)))
struct HTTPAPITests {
    @Test("GET /healthz answers 200 with a JSON body")
    func healthz() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let response = try await gateway.http(HTTP.request("GET", "/healthz"))
        #expect(response.status == 200, "\(response)")
        #expect(response.json != nil, "\(response)")
        #expect(response.header("content-type")?.contains("application/json") == true, "\(response)")
    }

    @Test("25 pipelined requests in one write are answered in order; the 20 pushes arrive in order")
    func pipelining() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "pipe", key: "k")

        enum Expected { case push(Int), health, notFound, badJSON }
        var requests: [[UInt8]] = []
        var expected: [Expected] = []
        for index in 0..<20 {
            switch index {
            case 0, 7, 14:
                requests.append(HTTP.request("GET", "/healthz"))
                expected.append(.health)
            case 10:
                requests.append(HTTP.request("GET", "/no/such/path"))
                expected.append(.notFound)
            case 12:
                requests.append(HTTP.request("POST", "/v1/push", body: #"{"to":{"users":["pipe"]},"op":"#))
                expected.append(.badJSON)
            default: break
            }
            requests.append(
                HTTP.request("POST", "/v1/push", body: pushBody(users: ["pipe"], payload: "{\"i\":\(index)}", id: "p\(index)")))
            expected.append(.push(index))
        }
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        try connection.send(requests)

        for (position, expectation) in expected.enumerated() {
            let response = try #require(try await connection.readResponse(), "closed before response \(position)")
            switch expectation {
            case .push(let index):
                #expect(response.status == 200, "response \(position): \(response)")
                #expect(response.json?["id"] as? String == "p\(index)", "response \(position): \(response)")
            case .health:
                #expect(response.status == 200, "response \(position): \(response)")
                #expect(response.json?["id"] == nil, "response \(position) should be /healthz: \(response)")
            case .notFound:
                #expect(response.status == 404, "response \(position): \(response)")
            case .badJSON:
                #expect(response.status == 400, "response \(position): \(response)")
            }
        }
        for index in 0..<20 {
            try await client.expectMessage(op: 1000, body: Array("{\"i\":\(index)}".utf8), "message \(index)")
        }
    }

    @Test("Connection: close and HTTP/1.0 without keep-alive get one response, then the server closes")
    func connectionClose() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let requests: [(String, [UInt8])] = [
            ("Connection: close", HTTP.request("GET", "/healthz", headers: [("Connection", "close")])),
            ("HTTP/1.0", Array("GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)),
        ]
        for (name, request) in requests {
            let connection = try await HTTPConnection.connect(gateway)
            defer { connection.close() }
            try connection.sendRaw(request)
            let response = try #require(try await connection.readResponse(), "\(name): closed without a response")
            #expect(response.status == 200, "\(name): \(response)")
            #expect(try await connection.expectClosed(), "\(name): the server should close after the response")
        }
    }

    @Test("A request sent one byte at a time")
    func requestByteByByte() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        for byte in HTTP.request("POST", "/v1/push", body: pushBody(all: true, payload: "[]", id: "bytes")) {
            try connection.sendRaw([byte])
            try await pause(0.001)
        }
        let response = try #require(try await connection.readResponse())
        #expect(response.status == 200, "\(response)")
        #expect(response.json?["id"] as? String == "bytes", "\(response)")
        #expect(number(response.json?["delivered"]) == 0, "\(response)")
    }

    struct ErrorCase: Sendable {
        let name: String
        let request: [UInt8]
        let status: Int
        var allow: String? = nil
        var code: String? = nil
    }

    @Test("Every error status: JSON error body, right status, and the keep-alive connection stays usable")
    func errorStatuses() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_API_KEYS": "k1,k2"])
        defer { gateway.stop() }
        let good = pushBody(all: true, payload: "{}")
        let cases: [ErrorCase] = [
            ErrorCase(name: "no Authorization", request: HTTP.request("POST", "/v1/push", body: good), status: 401),
            ErrorCase(name: "wrong key", request: HTTP.request("POST", "/v1/push", body: good, apiKey: "k3"), status: 401),
            ErrorCase(name: "key prefix", request: HTTP.request("POST", "/v1/push", body: good, apiKey: "k"), status: 401),
            ErrorCase(
                name: "Basic scheme",
                request: HTTP.request("POST", "/v1/push", body: good, headers: [("Authorization", "Basic azE=")]),
                status: 401),
            ErrorCase(
                name: "Bearer without key",
                request: HTTP.request("POST", "/v1/push", body: good, headers: [("Authorization", "Bearer")]),
                status: 401),
            ErrorCase(
                name: "bad JSON", request: HTTP.request("POST", "/v1/push", body: #"{"to":"#, apiKey: "k2"), status: 400),
            ErrorCase(
                name: "JSON array body", request: HTTP.request("POST", "/v1/push", body: "[]", apiKey: "k1"), status: 400),
            ErrorCase(
                name: "missing to",
                request: HTTP.request("POST", "/v1/push", body: #"{"op":1000,"payload":{},"store":false}"#, apiKey: "k1"),
                status: 400),
            ErrorCase(
                name: "empty to",
                request: HTTP.request("POST", "/v1/push", body: #"{"to":{},"op":1000,"payload":{},"store":false}"#, apiKey: "k1"),
                status: 400),
            ErrorCase(
                name: "missing op",
                request: HTTP.request(
                    "POST", "/v1/push", body: #"{"to":{"all":true},"payload":{},"store":false}"#, apiKey: "k1"),
                status: 400),
            ErrorCase(
                name: "op 999", request: HTTP.request("POST", "/v1/push", body: pushBody(all: true, op: 999), apiKey: "k1"),
                status: 400),
            ErrorCase(
                name: "op 7 (AUTH)",
                request: HTTP.request("POST", "/v1/push", body: pushBody(users: ["u"], op: 7), apiKey: "k1"), status: 400),
            ErrorCase(
                name: "payload_b64 not base64",
                request: HTTP.request("POST", "/v1/push", body: pushBody(all: true, payloadB64: "!!!not base64!!!"), apiKey: "k1"),
                status: 400),
            ErrorCase(
                name: "bad percent-escape in the query",
                request: HTTP.request("GET", "/v1/users/u/messages?after=%zz", apiKey: "k1"), status: 400),
            ErrorCase(
                name: "truncated percent-escape in the query",
                request: HTTP.request("GET", "/v1/users/u/messages?after=%4", apiKey: "k1"), status: 400),
            ErrorCase(
                name: "text/plain body",
                request: HTTP.request("POST", "/v1/push", body: good, apiKey: "k1", contentType: "text/plain"),
                status: 415),
            ErrorCase(
                name: "form type with a body that is not JSON",
                request: HTTP.request(
                    "POST", "/v1/push", body: "a=1&b=2", apiKey: "k1", contentType: "application/x-www-form-urlencoded"),
                status: 415),
            ErrorCase(name: "unknown path", request: HTTP.request("GET", "/v2/nothing", apiKey: "k1"), status: 404),
            ErrorCase(
                name: "GET /v1/push", request: HTTP.request("GET", "/v1/push", apiKey: "k1"), status: 405, allow: "POST"),
            ErrorCase(
                name: "DELETE /healthz", request: HTTP.request("DELETE", "/healthz", apiKey: "k1"), status: 405, allow: "GET"),
            ErrorCase(
                name: "register without auth.secret",
                request: HTTP.request("POST", "/v1/register", body: #"{"user":"u","device":"d"}"#, apiKey: "k1"),
                status: 501),
        ]
        for errorCase in cases {
            let connection = try await HTTPConnection.connect(gateway)
            defer { connection.close() }
            try connection.send([errorCase.request, HTTP.request("GET", "/healthz")])
            let response = try #require(try await connection.readResponse(), "\(errorCase.name): closed")
            #expect(response.status == errorCase.status, "\(errorCase.name): \(response)")
            expectErrorShape(response, errorCase.name)
            if let allow = errorCase.allow {
                let header = response.header("allow") ?? ""
                #expect(header.contains(allow), "\(errorCase.name): Allow header \(header.debugDescription)")
            }
            let next = try await connection.readResponse()
            #expect(next?.status == 200, "\(errorCase.name): the connection should stay usable, got \(String(describing: next))")
        }

        // curl -d '{…}' (curl's default form type) and a body without any type are read as JSON.
        for contentType in ["application/x-www-form-urlencoded", nil] {
            let curl = try await gateway.http(
                HTTP.request("POST", "/v1/push", body: good, apiKey: "k1", contentType: contentType))
            #expect(curl.status == 200, "Content-Type \(contentType ?? "none"): \(curl)")
        }

        // /healthz needs no key; a right key pushes.
        let health = try await gateway.http(HTTP.request("GET", "/healthz"))
        #expect(health.status == 200, "\(health)")
        for key in ["k1", "k2"] {
            let ok = try await gateway.push(pushBody(all: true, payload: "{}", id: key), apiKey: key)
            #expect(ok.status == 200, "key \(key): \(ok)")
            #expect(ok.json?["id"] as? String == key, "\(ok)")
        }
    }

    @Test("Malformed HTTP gets 400 with a JSON error, then the server closes")
    func malformedHTTP() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let inputs: [(String, String)] = [
            ("garbage request line", "GARBAGE\r\n\r\n"),
            ("header without colon", "GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n"),
            ("bad Content-Length", "POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}"),
            ("bad HTTP version", "GET /healthz HTTZ/9.9\r\n\r\n"),
        ]
        for (name, text) in inputs {
            let connection = try await HTTPConnection.connect(gateway)
            defer { connection.close() }
            try connection.sendRaw(Array(text.utf8))
            let response = try #require(try await connection.readResponse(), "\(name): closed without a response")
            #expect(response.status == 400, "\(name): \(response)")
            expectErrorShape(response, name)
            #expect(try await connection.expectClosed(), "\(name): the server should close after a malformed request")
        }
    }

    @Test("A body over max_body gets 413 with a JSON error, then the server closes; max_body itself is fine")
    func bodyTooLarge() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_MAX_BODY": "100"])
        defer { gateway.stop() }
        let base = pushBody(all: true, payload: "{}", id: "mb")
        let exact = String(base.dropLast()) + String(repeating: " ", count: 100 - base.utf8.count) + "}"
        #expect(exact.utf8.count == 100)
        let fits = try await gateway.push(exact)
        #expect(fits.status == 200, "a body of exactly max_body: \(fits)")

        let over = String(base.dropLast()) + String(repeating: " ", count: 101 - base.utf8.count) + "}"
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        try connection.sendRaw(HTTP.request("POST", "/v1/push", body: over))
        let response = try #require(try await connection.readResponse(), "closed without a response")
        #expect(response.status == 413, "\(response)")
        expectErrorShape(response, "101-byte body")
        #expect(try await connection.expectClosed(), "the server should close after 413")

        // A declared 10 MB body is refused without waiting for it.
        let big = try await HTTPConnection.connect(gateway)
        defer { big.close() }
        try big.sendRaw(
            Array("POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{".utf8))
        let refused = try #require(try await big.readResponse(timeout: 3), "closed without a response")
        #expect(refused.status == 413, "\(refused)")
        #expect(try await big.expectClosed(timeout: 3), "the server should close after 413")
    }
}
