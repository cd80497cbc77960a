// Automatic bans (SPEC §8, fail2ban's idea): an address with more than limits.autoban_errors failed AUTHs or fatal
// protocol errors within autoban_window is banned for autoban_ttl, through the shared ban list. Loopback is never
// banned, so the offenders here are addresses a PROXY header claims (203.0.113.x).
import Foundation
import Testing

/// A gateway behind a load balancer that verifies tokens and bans after 3 failures for `ttl` seconds.
private func autoBanGateway(ttl: Int = 600) async throws -> GatewayProcess {
    try await GatewayProcess.start(
        behindProxy.merging([
            "PUSHGW_AUTH_REQUIRED": "true", "PUSHGW_AUTH_SECRET": "autoban-secret",
            "PUSHGW_LIMITS_AUTOBAN_ERRORS": "3", "PUSHGW_LIMITS_AUTOBAN_WINDOW": "60",
            "PUSHGW_LIMITS_AUTOBAN_TTL": "\(ttl)",
        ]) { $1 })
}

extension WireClient {
    /// Sends AUTH with a forged token and expects ERROR auth_failed, then the close.
    func failAuth(_ comment: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try send(op: Op.auth, seq: 3, text: authBody(mid: "intruder", key: "k", token: "forged.token"))
        let frames = try await readUntilClosed()
        #expect(frames.map(\.errorCode) == ["auth_failed"], "\(comment): \(frames)", sourceLocation: sourceLocation)
    }
}

extension GatewayProcess {
    /// Whether a new connection claiming `address` is closed at accept, within `timeout` seconds of trying.
    func closesAtAccept(_ address: String, timeout: Double = 4) async throws -> Bool {
        try await eventually(timeout: timeout) {
            try await WireClient.connect(self, claiming: address).closedWithoutFrame(timeout: 0.3)
        }
    }

    /// Whether a new connection claiming `address` stays open (nothing is sent on it, so it counts as no failure).
    func staysOpen(_ address: String) async throws -> Bool {
        !(try await WireClient.connect(self, claiming: address).closedWithoutFrame(timeout: 0.5))
    }
}

@Suite("Automatic bans", .serialized, .timeLimit(.minutes(1)))
struct AutoBanTests {
    @Test("More than autoban_errors failed AUTHs from 203.0.113.9: banned in Redis, listed with its reason; others stay")
    func failedAuths() async throws {
        let gateway = try await autoBanGateway()
        defer { gateway.stop() }
        for attempt in 1...3 {
            try await WireClient.connect(gateway, claiming: "203.0.113.9").failAuth("attempt \(attempt)")
        }
        #expect(try await gateway.staysOpen("203.0.113.9"), "3 failures are allowed")
        try await WireClient.connect(gateway, claiming: "203.0.113.9").failAuth("the 4th")
        #expect(try await gateway.closesAtAccept("203.0.113.9"), "banned after the 4th failure")
        #expect(try await gateway.staysOpen("203.0.113.10"), "another address is not banned")

        let bans = try await gateway.banList()
        #expect(bans.count == 1, "\(bans)")
        let ban = try #require(bans.first)
        #expect(ban["ip"] as? String == "203.0.113.9" && ban["user"] is NSNull, "\(ban)")
        #expect((ban["reason"] as? String)?.hasPrefix("automatic: more than 3 failed AUTHs") == true, "\(ban)")
        #expect(abs((number(ban["expires_at"]) ?? 0) - (unixNow() + 600)) < 5, "\(ban)")
        let redis = try #require(gateway.redis)
        #expect(try redisCall(redis, ["HLEN", "pg:{bans}"]) == "1", "stored in Redis, where every node reads it")
        try await gateway.expectCounter("pushgw_autobans_total", atLeast: 1)
    }

    @Test("Fatal protocol errors count too; the ban ends after autoban_ttl")
    func protocolErrorsAndExpiry() async throws {
        let gateway = try await autoBanGateway(ttl: 2)
        defer { gateway.stop() }
        for attempt in 1...4 {
            let client = try await WireClient.connect(gateway, claiming: "2001:db8::b")
            try client.sendRaw([0, 0, 0, 3] + [UInt8](repeating: 0, count: 12))  // packet length 3
            let frames = try await client.readUntilClosed()
            #expect(frames.map(\.errorCode) == ["bad_length"], "attempt \(attempt): \(frames)")
        }
        #expect(try await gateway.closesAtAccept("2001:db8::b"), "banned")
        let banned = Date()
        #expect(try await eventually(timeout: 6) { try await gateway.staysOpen("2001:db8::b") }, "served after the ttl")
        #expect(Date().timeIntervalSince(banned) > 0.5, "not before the ban ended")
    }

    @Test("Loopback is never banned automatically: from 127.0.0.1 itself (a LOCAL header) or claimed by a header")
    func loopbackNever() async throws {
        let gateway = try await autoBanGateway()
        defer { gateway.stop() }
        for attempt in 1...5 {
            try await WireClient.connect(gateway, proxy: Proxy.v2Local).failAuth("local \(attempt)")
            try await WireClient.connect(gateway, claiming: "127.0.0.9").failAuth("claimed \(attempt)")
            try await WireClient.connect(gateway, claiming: "::1").failAuth("claimed ::1 \(attempt)")
        }
        #expect(try await gateway.staysOpen("127.0.0.9"))
        let local = try await WireClient.connect(gateway, proxy: Proxy.v2Local)
        #expect(try await !local.closedWithoutFrame(timeout: 0.5))
        #expect(try await gateway.banList().isEmpty)
        #expect(try await gateway.counter("pushgw_autobans_total") == 0)
    }
}
