// Who may call the HTTP API and how often (SPEC §8): api.allow (403 forbidden, /healthz open) and
// limits.api_rate/api_burst per API key (429 rate_limited with Retry-After, then recovery).
import Foundation
import Testing

@Suite("API limits", .timeLimit(.minutes(1)))
struct APILimitTests {
    @Test("api.allow: other addresses get 403 forbidden on every path but /healthz; allowed ones are served")
    func allowList() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_API_ALLOW": "127.0.0.1,127.0.0.16/28"])
        defer { gateway.stop() }
        #expect(try await gateway.http(HTTP.request("GET", "/v1/nodes")).status == 200, "127.0.0.1 is allowed")
        let inRange = try await HTTPConnection.connect(gateway, from: "127.0.0.17")
        defer { inRange.close() }
        let ranged = try await inRange.roundTrip(HTTP.request("GET", "/v1/nodes"))
        #expect(ranged.status == 200, "127.0.0.17 is in the range: \(ranged)")

        let outsider = try await HTTPConnection.connect(gateway, from: "127.0.0.2")
        defer { outsider.close() }
        for request in [
            HTTP.request("GET", "/v1/nodes"), HTTP.request("POST", "/v1/push", body: "{}"),
            HTTP.request("GET", "/no/such/path"), HTTP.request("GET", "/metrics"),
            HTTP.request("POST", "/v1/bans", body: #"{"ip":"127.0.0.1"}"#),
        ] {
            let response = try await outsider.roundTrip(request)
            #expect(response.status == 403 && response.errorCode == "forbidden", "\(response)")
            expectErrorShape(response, "403")
        }
        let goim = try await outsider.roundTrip(HTTP.request("GET", "/goim/online/total"))
        #expect(goim.status == 403 && number(goim.json?["code"]) == -400, "goim's body: \(goim)")
        let health = try await outsider.roundTrip(HTTP.request("GET", "/healthz"))
        #expect(health.status == 200, "/healthz stays open for probes: \(health)")
        #expect(try await gateway.banList().isEmpty, "the outsider's ban was refused")
        try await gateway.expectCounter("pushgw_api_forbidden_total", atLeast: 6)
    }

    @Test("limits.api_rate: past the burst 429 rate_limited with Retry-After; each key has its own bucket; it refills")
    func rateLimit() async throws {
        let gateway = try await GatewayProcess.start([
            "PUSHGW_API_KEYS": "key-a,key-b", "PUSHGW_LIMITS_API_RATE": "2", "PUSHGW_LIMITS_API_BURST": "4",
        ])
        defer { gateway.stop() }
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        let request = HTTP.request("GET", "/v1/nodes", apiKey: "key-a")
        for index in 0..<4 {
            let response = try await connection.roundTrip(request)
            #expect(response.status == 200, "request \(index) within the burst: \(response)")
        }
        let limited = try await connection.roundTrip(request)
        #expect(limited.status == 429 && limited.errorCode == "rate_limited", "\(limited)")
        expectErrorShape(limited, "429")
        let retryAfter = try #require(limited.header("retry-after").flatMap(Int.init), "\(limited)")
        #expect((1...2).contains(retryAfter), "one token comes back in 0.5 s: \(limited)")

        let other = try await connection.roundTrip(HTTP.request("GET", "/v1/nodes", apiKey: "key-b"))
        #expect(other.status == 200, "another key has its own budget: \(other)")
        let unknown = try await connection.roundTrip(HTTP.request("GET", "/v1/nodes", apiKey: "nope"))
        #expect(unknown.status == 401, "a wrong key is refused before it is counted: \(unknown)")
        for _ in 0..<3 {
            let probe = try await connection.roundTrip(HTTP.request("GET", "/healthz"))
            #expect(probe.status == 200, "probes are not limited: \(probe)")
        }

        try await pause(Double(retryAfter))
        let recovered = try await connection.roundTrip(request)
        #expect(recovered.status == 200, "after Retry-After: \(recovered)")
        try await gateway.expectCounter("pushgw_api_rate_limited_total", atLeast: 1)
        let stats = try await gateway.stats().values
        #expect(stats["api_rate_limited_total"].flatMap(Int.init).map { $0 >= 1 } == true, "ctl stats: \(stats)")
    }
}
