// Device tokens (SPEC §2 AUTH with auth.required, §3 POST /v1/register, §4 tokens).
import Foundation
import Testing

private let secret = "it-secret-\(UUID().uuidString)"

private func authRequired(ttl: Int? = nil) -> [String: String] {
    var env = ["PUSHGW_AUTH_REQUIRED": "true", "PUSHGW_AUTH_SECRET": secret]
    if let ttl { env["PUSHGW_AUTH_TOKEN_TTL"] = "\(ttl)" }
    return env
}

/// POST /v1/register; throws unless 200 with a token.
private func register(_ gateway: GatewayProcess, user: String, device: String, platform: String = "ios")
    async throws -> (token: String, json: [String: Any])
{
    let body = "{\"user\":\(jsonQuote(user)),\"device\":\(jsonQuote(device)),\"platform\":\(jsonQuote(platform))}"
    let response = try await gateway.http(HTTP.request("POST", "/v1/register", body: body))
    guard response.status == 200, let json = response.json, let token = json["token"] as? String else {
        throw TestError("POST /v1/register \(body): \(response)")
    }
    return (token, json)
}

/// `token` with one character of its signature part (after the '.') changed, in the middle so that the decoded
/// bytes change too.
private func forged(_ token: String) -> String {
    guard let dot = token.firstIndex(of: ".") else { return token + "x" }
    var signature = Array(token[token.index(after: dot)...])
    let middle = signature.count / 2
    signature[middle] = signature[middle] == "A" ? "B" : "A"
    return String(token[...dot]) + String(signature)
}

/// Sends AUTH `body` and expects ERROR auth_failed echoing the AUTH's seq, then the close.
private func expectAuthFailed(_ gateway: GatewayProcess, _ body: String, _ name: String,
    sourceLocation: SourceLocation = #_sourceLocation) async throws
{
    let client = try await WireClient.connect(gateway)
    defer { client.close() }
    try client.send(op: Op.auth, seq: 77, text: body)
    let frames = try await client.readUntilClosed()
    #expect(frames.count == 1, "\(name): one ERROR then close, got \(frames)", sourceLocation: sourceLocation)
    #expect(frames.first?.op == Op.error, "\(name): \(frames)", sourceLocation: sourceLocation)
    #expect(frames.first?.errorCode == "auth_failed", "\(name): \(frames)", sourceLocation: sourceLocation)
    #expect(frames.first?.seq == 77, "\(name): the ERROR echoes the AUTH's seq: \(frames)", sourceLocation: sourceLocation)
    #expect(number(frames.first?.json?["op"]) == Double(Op.auth), "\(name): \(frames)", sourceLocation: sourceLocation)
}

enum RefusedToken: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case wrongUser = "a token of another user"
    case wrongDevice = "a token of another device of the user"
    case forgedSignature = "one character of the signature changed"
    case forgedPayload = "the payload re-encoded for another user, old signature"
    case noToken = "no token"
    case garbage = "not a token"
    case otherSecret = "signed with another secret"

    var testDescription: String { rawValue }
}

@Suite("Device tokens", .timeLimit(.minutes(1)))
struct TokenAuthTests {
    @Test("POST /v1/register issues a token, expiry and gateways; AUTH with it works, the key coming from the token")
    func registerAndAuth() async throws {
        let gateway = try await GatewayProcess.start(authRequired(), webSocket: true)
        defer { gateway.stop() }
        let (token, json) = try await register(gateway, user: "alice", device: "phone-7")
        #expect(token.split(separator: ".", omittingEmptySubsequences: false).count == 2, "token \(token)")
        let expiresAt = number(json["expires_at"]) ?? 0
        #expect(abs(expiresAt - (unixNow() + 2_592_000)) < 120, "default token_ttl is 30 days: \(json)")
        let gateways = (json["gateways"] as? [String]) ?? []
        #expect(gateways.first == "127.0.0.1:\(gateway.tcpPort)", "the client TCP address: \(json)")
        let webSockets = (json["websockets"] as? [String]) ?? []
        #expect(webSockets.first == "127.0.0.1:\(gateway.webSocketPort ?? 0)", "the WebSocket address for browsers: \(json)")

        // No key in AUTH: the token's device is the key.
        let client = try await WireClient.connect(gateway)
        let reply = try await client.auth(mid: "alice", token: token)
        #expect(number(reply["code"]) == 0, "\(reply)")
        #expect(reply["key"] as? String == "phone-7", "the key comes from the token: \(reply)")
        #expect(try await gateway.deviceKeys("alice") == ["phone-7"])
        let push = try await gateway.push(pushBody(devices: [("alice", "phone-7")], payload: #"{"to":"phone-7"}"#))
        #expect(push.status == 200 && push.online("alice") == 1, "\(push)")
        try await client.expectMessage(op: 1000, body: Array(#"{"to":"phone-7"}"#.utf8), "device push by the token's key")

        // The same token with the key given explicitly works too.
        let second = try await WireClient.connect(gateway)
        let again = try await second.auth(mid: "alice", key: "phone-7", token: token)
        #expect(number(again["code"]) == 0 && again["key"] as? String == "phone-7", "\(again)")
    }

    @Test("AUTH with a refused token: ERROR auth_failed, then close", arguments: RefusedToken.allCases)
    func refused(_ kind: RefusedToken) async throws {
        let gateway = try await GatewayProcess.start(authRequired())
        defer { gateway.stop() }
        let (token, _) = try await register(gateway, user: "bob", device: "laptop")
        let body: String
        switch kind {
        case .wrongUser:
            body = authBody(mid: "mallory", token: token)
        case .wrongDevice:
            body = authBody(mid: "bob", key: "tablet", token: token)
        case .forgedSignature:
            body = authBody(mid: "bob", key: "laptop", token: forged(token))
        case .forgedPayload:
            let signature = token.split(separator: ".")[1]
            let payload = Data(#"{"u":"bob","d":"laptop","exp":4102444800}"#.utf8).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            body = authBody(mid: "bob", key: "laptop", token: payload + "." + signature)
        case .noToken:
            body = authBody(mid: "bob", key: "laptop")
        case .garbage:
            body = authBody(mid: "bob", key: "laptop", token: "not-a-token")
        case .otherSecret:
            let other = try await GatewayProcess.start(["PUSHGW_AUTH_REQUIRED": "true", "PUSHGW_AUTH_SECRET": "another"])
            defer { other.stop() }
            let (foreign, _) = try await register(other, user: "bob", device: "laptop")
            body = authBody(mid: "bob", key: "laptop", token: foreign)
        }
        try await expectAuthFailed(gateway, body, kind.rawValue)
        // The genuine token still works on the same gateway.
        let client = try await WireClient.connect(gateway)
        let reply = try await client.auth(mid: "bob", key: "laptop", token: token)
        #expect(number(reply["code"]) == 0, "\(reply)")
        #expect(try await gateway.deviceKeys("bob") == ["laptop"], "a refused AUTH must leave no session")
    }

    @Test("An expired token (auth.token_ttl 1, 2.5 s later): ERROR auth_failed, then close")
    func expired() async throws {
        let gateway = try await GatewayProcess.start(authRequired(ttl: 1))
        defer { gateway.stop() }
        let (token, json) = try await register(gateway, user: "carol", device: "watch")
        #expect(abs((number(json["expires_at"]) ?? 0) - (unixNow() + 1)) < 3, "token_ttl 1: \(json)")
        try await pause(2.5)
        try await expectAuthFailed(gateway, authBody(mid: "carol", key: "watch", token: token), "expired")
        try await expectAuthFailed(gateway, authBody(mid: "carol", token: token), "expired, no key")
    }

    @Test("Without auth.secret, POST /v1/register answers 501 with a JSON error")
    func registerWithoutSecret() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let response = try await gateway.http(
            HTTP.request("POST", "/v1/register", body: #"{"user":"dave","device":"d1","platform":"ios"}"#))
        #expect(response.status == 501, "\(response)")
        #expect(response.errorCode == "not_implemented", "\(response)")
        expectErrorShape(response, "register without secret")
    }
}
