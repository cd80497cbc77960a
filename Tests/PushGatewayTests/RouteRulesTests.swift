// Route rules (SPEC §8): PUT/GET /v1/route/rules, and what POST /v1/register answers under each rule —
// deny, allow, percent, long_connection, versions, and the gray group's gateways on nodes of another group.
import Foundation
import Testing

/// What register answers, read for the rules: long connection or not, the group, the gateways, the poll path.
private struct Route {
    let longConnection: Bool?
    let group: String?
    let gateways: [String]
    let poll: String?

    init(_ response: HTTPResponse) throws {
        guard response.status == 200, let json = response.json else { throw TestError("register: \(response)") }
        longConnection = json["long_connection"] as? Bool
        group = json["group"] as? String
        gateways = (json["gateways"] as? [String]) ?? []
        poll = json["poll"] as? String
    }
}

private func route(_ gateway: GatewayProcess, _ user: String, device: String = "d", version: String? = nil)
    async throws -> Route
{
    try Route(try await gateway.register(user, device: device, version: version))
}

/// Two gateways on one Redis, the second in group `gray`, once each lists both nodes.
private func defaultAndGray() async throws -> (redis: RedisServer, main: GatewayProcess, gray: GatewayProcess) {
    let directory = URL(fileURLWithPath: NSTemporaryDirectory())
        .appendingPathComponent("pushgw-it-rules-" + UUID().uuidString.prefix(8).lowercased())
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let redis = try await RedisServer.start(in: directory)
    let main = try await GatewayProcess.start(registerSecret, redis: .shared(redis))
    let gray = try await GatewayProcess.start(
        registerSecret.merging(["PUSHGW_SERVER_GROUP": "gray"]) { $1 }, redis: .shared(redis))
    for gateway in [main, gray] { try await gateway.waitForWorkers(1, nodes: 2) }
    return (redis, main, gray)
}

@Suite("Route rules", .timeLimit(.minutes(1)))
struct RouteRulesTests {
    @Test("GET answers the defaults, PUT replaces them and GET reads them back; bad bodies are 400 naming the field")
    func roundTrip() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let defaults = try await gateway.http(HTTP.request("GET", "/v1/route/rules"))
        let defaultRules = #"{"long_connection":true,"percent":100,"gray":null,"allow":[],"deny":[]}"#
        #expect(defaults.text == defaultRules, "\(defaults)")
        let rules = #"{"long_connection":true,"percent":50,"gray":{"group":"gray","percent":5},"#
            + #""allow":[{"user":"u1"},{"version":"2.0.*"}],"deny":[{"device":"k9"}]}"#
        let put = try await gateway.http(HTTP.request("PUT", "/v1/route/rules", body: rules))
        #expect(put.status == 200 && put.text == rules, "\(put)")
        #expect(try await gateway.http(HTTP.request("GET", "/v1/route/rules")).text == rules)
        // A member left out takes its default.
        try await gateway.putRules(#"{"percent":10}"#)
        let partial = try await gateway.http(HTTP.request("GET", "/v1/route/rules"))
        #expect(
            partial.text == #"{"long_connection":true,"percent":10,"gray":null,"allow":[],"deny":[]}"#, "\(partial)")

        for (body, field) in [
            (#"{"percent":101}"#, "percent"), (#"{"percent":"5"}"#, "percent"),
            (#"{"long_connection":1}"#, "long_connection"), (#"{"gray":{"group":"g"}}"#, "gray.percent"),
            (#"{"gray":{"percent":5}}"#, "gray.group"), (#"{"allow":[{"uid":"u"}]}"#, "allow[0]"),
            (#"{"deny":{"user":"u"}}"#, "deny"), (#"{"percents":5}"#, "percents"), ("not json", "JSON"),
        ] {
            let response = try await gateway.http(HTTP.request("PUT", "/v1/route/rules", body: body))
            #expect(response.status == 400 && response.errorCode == "bad_request", "\(body): \(response)")
            #expect(response.errorMessage?.contains(field) == true, "\(body) names \(field): \(response)")
        }
        #expect(try await gateway.http(HTTP.request("GET", "/v1/route/rules")).text == partial.text, "kept")
        let wrong = try await gateway.http(HTTP.request("POST", "/v1/route/rules", body: "{}"))
        #expect(wrong.status == 405 && wrong.header("allow") == "GET, PUT", "\(wrong)")
    }

    @Test("register answers long_connection, group and the poll path; deny, allow, percent 0 and long_connection false")
    func decisions() async throws {
        let gateway = try await GatewayProcess.start(registerSecret)
        defer { gateway.stop() }
        let plain = try await route(gateway, "a/b c")
        #expect(plain.longConnection == true && plain.group == "default", "\(plain)")
        #expect(plain.gateways == ["127.0.0.1:\(gateway.tcpPort)"], "\(plain)")
        #expect(plain.poll == "/v1/users/a%2Fb%20c/messages", "\(plain)")

        try await gateway.putRules(#"{"deny":[{"user":"denied"},{"version":"0.9*"}]}"#)
        let denied = try await route(gateway, "denied")
        #expect(denied.longConnection == false && denied.gateways.isEmpty, "a denied user long-polls: \(denied)")
        #expect(denied.poll == "/v1/users/denied/messages", "\(denied)")
        #expect(try await route(gateway, "old-app", version: "0.9.4").longConnection == false, "a denied version")
        #expect(try await route(gateway, "new-app", version: "1.0").longConnection == true)

        try await gateway.putRules(#"{"percent":0,"allow":[{"user":"tester"},{"device":"lab-phone"}]}"#)
        #expect(try await route(gateway, "tester").longConnection == true, "allowed: always")
        #expect(try await route(gateway, "anyone", device: "lab-phone").longConnection == true, "an allowed device")
        for user in ["u1", "u2", "u3", "u4"] {
            #expect(try await route(gateway, user).longConnection == false, "percent 0: \(user) long-polls")
        }

        try await gateway.putRules(#"{"long_connection":false,"allow":[{"user":"tester"}]}"#)
        #expect(try await route(gateway, "tester").longConnection == true, "allow wins over long_connection false")
        let off = try await route(gateway, "u1")
        #expect(off.longConnection == false && off.gateways.isEmpty && off.group == "default", "\(off)")

        // The version must be a string (or integer) id.
        let bad = try await gateway.http(
            HTTP.request("POST", "/v1/register", body: #"{"user":"u","device":"d","version":["1"]}"#))
        #expect(bad.status == 400 && bad.errorMessage?.contains("version") == true, "\(bad)")
    }

    @Test("Gray users get the gray group's gateways; with no live node in the group they fall back to default's")
    func grayGroup() async throws {
        let (redis, main, gray) = try await defaultAndGray()
        defer {
            main.stop()
            gray.stop()
            redis.stop()
        }
        let script = "return table.concat(redis.call('HVALS', KEYS[1]), ' ')"
        let nodes = try redisCall(redis, ["EVAL", script, "1", "pg:nodes"])
        #expect(nodes.contains("\"group\""), "nodes publish their group in pg:nodes: \(nodes)")
        let mainAddress = "127.0.0.1:\(main.tcpPort)"
        let grayAddress = "127.0.0.1:\(gray.tcpPort)"
        #expect(try await route(main, "u1").gateways == [mainAddress], "no rules: the default group only")

        // Put on one instance, applied by the other within a second.
        try await main.putRules(#"{"gray":{"group":"gray","percent":100}}"#)
        var seen: Route?
        let applied = try await eventually(timeout: 1.5) {
            seen = try await route(gray, "u1")
            return seen?.group == "gray"
        }
        #expect(applied, "the other instance applies the rules within a second: \(String(describing: seen))")
        for gateway in [main, gray] {
            let answer = try await route(gateway, "u2")
            #expect(answer.group == "gray" && answer.gateways == [grayAddress], "\(answer)")
        }

        try await main.putRules(#"{"gray":{"group":"gray","percent":0}}"#)
        try await pause(1)
        let normal = try await route(gray, "u2")
        #expect(normal.group == "default" && normal.gateways == [mainAddress], "\(normal)")

        try await main.putRules(#"{"gray":{"group":"canary","percent":100}}"#)
        try await pause(1)
        let fallback = try await route(main, "u3")
        #expect(fallback.group == "default" && fallback.gateways == [mainAddress], "no canary node: \(fallback)")
    }
}
