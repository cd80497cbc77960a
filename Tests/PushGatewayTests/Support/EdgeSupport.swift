// Helpers for the tests of bans, route rules and API limits (SPEC §8): clients from other loopback source
// addresses (127.0.0.x, so that a ban of one never touches the other tests on 127.0.0.1), and the ban, rules and
// register calls.
import Foundation
import Testing

extension WireClient {
    /// A client of `gateway`'s TCP listener connecting from `source` (`127.0.0.2`, …).
    static func connect(_ gateway: GatewayProcess, from source: String) async throws -> WireClient {
        let port = gateway.tcpPort
        return try await offload { WireClient(socket: try TestSocket(port: port, timeout: 5, source: source)) }
    }

    /// Sends AUTH and expects ERROR `banned` answering it (fatal: the connection then closes).
    func expectBannedAtAuth(
        mid: MID, key: String, _ comment: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        try send(op: Op.auth, seq: 41, text: authBody(mid: mid, key: key))
        let frames = try await readUntilClosed()
        let seen = "\(comment): \(frames)"
        #expect(frames.count == 1, "\(seen): one ERROR then the close", sourceLocation: sourceLocation)
        #expect(frames.first?.errorCode == "banned", "\(seen)", sourceLocation: sourceLocation)
        #expect(frames.first?.seq == 41, "\(seen): the ERROR answers the AUTH", sourceLocation: sourceLocation)
    }

    /// Expects the connection to be closed at once, before any frame: a banned address at accept.
    func expectClosedAtAccept(_ comment: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        // The AUTH may already meet a closed socket: a failed send is a close too.
        try? send(op: Op.auth, seq: 1, text: authBody(mid: "whoever", key: "k"))
        let frames = try? await readUntilClosed(timeout: 3)
        #expect(frames != nil, "\(comment): not closed", sourceLocation: sourceLocation)
        #expect(
            frames?.isEmpty == true, "\(comment): closed without a frame, got \(frames ?? [])",
            sourceLocation: sourceLocation)
    }

    /// Reads until the DISCONNECT a new ban sends and the close; returns the DISCONNECT's body.
    func expectBannedDisconnect(
        timeout: Double = 3, _ comment: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let frames = try await readUntilClosed(timeout: timeout)
        let body = disconnectBody(frames.last)
        #expect(body?["reason"] as? String == "banned", "\(comment): \(frames)", sourceLocation: sourceLocation)
        #expect(body?["reconnect"] as? Bool == false, "\(comment): \(frames)", sourceLocation: sourceLocation)
    }
}

extension HTTPConnection {
    /// A connection to `gateway`'s HTTP API from `source`.
    static func connect(_ gateway: GatewayProcess, from source: String) async throws -> HTTPConnection {
        let port = gateway.httpPort
        return try await offload { HTTPConnection(socket: try TestSocket(port: port, timeout: 5, source: source)) }
    }
}

extension GatewayProcess {
    /// POST /v1/bans with `body`; returns the new ban's id (throws unless 200 with one).
    @discardableResult
    func ban(_ body: String) async throws -> String {
        let response = try await http(HTTP.request("POST", "/v1/bans", body: body))
        guard response.status == 200, let id = response.json?["id"] as? String else {
            throw TestError("POST /v1/bans \(body): \(response)")
        }
        return id
    }

    /// GET /v1/bans → `bans`.
    func banList() async throws -> [[String: Any]] {
        let response = try await http(HTTP.request("GET", "/v1/bans"))
        guard response.status == 200, let bans = response.json?["bans"] as? [[String: Any]] else {
            throw TestError("GET /v1/bans: \(response)")
        }
        return bans
    }

    /// POST /v1/register for `user` on `device` (with `version` when given).
    func register(_ user: String, device: String, version: String? = nil) async throws -> HTTPResponse {
        var body = "{\"user\":\(jsonQuote(user)),\"device\":\(jsonQuote(device))"
        if let version { body += ",\"version\":\(jsonQuote(version))" }
        return try await http(HTTP.request("POST", "/v1/register", body: body + "}"))
    }

    /// PUT /v1/route/rules with `body`; throws unless 200.
    func putRules(_ body: String) async throws {
        let response = try await http(HTTP.request("PUT", "/v1/route/rules", body: body))
        guard response.status == 200 else { throw TestError("PUT /v1/route/rules \(body): \(response)") }
    }

    /// The value of a counter in /metrics (0 when absent), e.g. `pushgw_banned_at_auth_total`.
    func counter(_ name: String) async throws -> Double {
        metricValue(try await metrics().text, name) ?? 0
    }

    /// Waits (at most `timeout` s, /metrics is at most a second old) until counter `name` reaches `value`.
    func expectCounter(
        _ name: String, atLeast value: Double, timeout: Double = 4, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var seen = 0.0
        let reached = try await eventually(timeout: timeout) {
            seen = try await counter(name)
            return seen >= value
        }
        #expect(reached, "\(name) is \(seen), expected at least \(value)", sourceLocation: sourceLocation)
    }
}

/// The settings of gateways that register devices (register needs a secret to sign tokens).
let registerSecret = ["PUSHGW_AUTH_SECRET": "edge-test-secret"]
