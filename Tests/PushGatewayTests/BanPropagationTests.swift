// Bans across nodes and from the admin socket (SPEC §6, §8): a ban made on one instance applies on another within
// about a second, and on the other workers of the same instance; `ban`, `bans`, `unban` on the admin socket and
// through `pushgw ctl` do what the HTTP API does.
import Foundation
import Testing

@Suite("Bans across nodes and the admin socket", .timeLimit(.minutes(1)))
struct BanPropagationTests {
    @Test("A ban made on one instance disconnects a device on another within about a second and refuses its AUTH")
    func secondInstance() async throws {
        let cluster = try await SharedRedisCluster.start(instances: 2)
        defer { cluster.stop() }
        let (first, second) = (cluster.gateways[0], cluster.gateways[1])
        let device = try await WireClient.connect(second)
        try await device.auth(mid: "far-away", key: "k")
        let fromAddress = try await WireClient.connect(second, from: "127.0.0.8")
        try await fromAddress.auth(mid: "someone", key: "k")

        let start = Date()
        try await first.ban(#"{"user":"far-away"}"#)
        try await device.expectBannedDisconnect(timeout: 3, "the other instance's connection")
        let elapsed = Date().timeIntervalSince(start)
        #expect(elapsed < 1.5, "applied on the other instance after \(elapsed) s")
        try await WireClient.connect(second).expectBannedAtAuth(mid: "far-away", key: "k2", "a new AUTH there")

        try await first.ban(#"{"ip":"127.0.0.8"}"#)
        try await fromAddress.expectBannedDisconnect(timeout: 3, "an address ban, on the other instance")
        try await WireClient.connect(second, from: "127.0.0.8").expectClosedAtAccept("at accept there")
        #expect(try await second.banList().count == 2, "both instances list the same bans")
    }

    @Test("Every worker of an instance applies a ban within about a second, whichever took the request")
    func everyWorker() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        // Connections until both workers hold some (the kernel spreads them over the SO_REUSEPORT listeners).
        var clients: [WireClient] = []
        var nodes: Set<String> = []
        while nodes.count < 2 && clients.count < 40 {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: "crowd", key: "k\(clients.count)")
            clients.append(client)
            let devices = (try await gateway.userInfo("crowd")["devices"] as? [[String: Any]]) ?? []
            nodes = Set(devices.compactMap { $0["node"] as? String })
        }
        try #require(nodes.count == 2, "both workers hold a connection after \(clients.count): \(nodes)")
        try await gateway.ban(#"{"user":"crowd"}"#)
        for (index, client) in clients.enumerated() {
            try await client.expectBannedDisconnect(timeout: 2, "connection \(index)")
        }
    }

    @Test("Admin socket: ban (reason last, with spaces), bans, unban; ctl ban and a refusal's exit status")
    func adminCommands() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let added = try await gateway.admin("ban user=admin-banned ttl=600 reason=too many requests")
        let id = try #require(added.first?.split(separator: " ").dropFirst(2).first.map(String.init), "\(added)")
        #expect(added.first?.hasPrefix("OK ban ") == true && added.first?.contains("expires_in_s=") == true, "\(added)")
        try await WireClient.connect(gateway).expectBannedAtAuth(mid: "admin-banned", key: "k", "banned by the admin")

        let listed = try await gateway.admin("bans")
        let line = try #require(listed.first { $0.hasPrefix("ban \(id) ") }, "\(listed)")
        #expect(line.contains("user=admin-banned") && line.contains("ip=-") && line.contains("device=-"), "\(line)")
        #expect(line.hasSuffix("reason=too\\x20many\\x20requests"), "\(line)")
        #expect(listed.last == "total 1", "\(listed)")
        let api = try await gateway.banList()
        #expect(api.first?["reason"] as? String == "too many requests", "the API lists it too: \(api)")

        #expect(try await gateway.admin("unban \(id)") == ["OK unbanned \(id)"])
        #expect(try await gateway.admin("unban \(id)").first?.hasPrefix("ERR no ban") == true)
        let client = try await WireClient.connect(gateway)
        #expect(number(try await client.auth(mid: "admin-banned", key: "k")["code"]) == 0, "unbanned")
        let empty = try await gateway.admin("ban ttl=5")
        #expect(empty.first?.hasPrefix("ERR give at least one of ip, user, device") == true, "\(empty)")
        #expect(try await gateway.admin("ban ip=10.0.0.1/8").first?.hasPrefix("ERR ip:") == true)

        let ctl = try await runCtl(["ban", "ip=127.0.0.9", "reason=ctl", "--socket", gateway.adminSocketPath])
        #expect(ctl.state == .exited(0) && ctl.stdout.hasPrefix("OK ban "), "\(ctl)")
        try await WireClient.connect(gateway, from: "127.0.0.9").expectClosedAtAccept("banned through ctl")
        let refused = try await runCtl(["unban", "nope", "--socket", gateway.adminSocketPath])
        #expect(refused.state == .exited(1) && refused.stderr.contains("no ban"), "\(refused)")
        let help = try await gateway.admin("help")
        #expect(help.contains { $0.hasPrefix("ban ip=") } && help.contains { $0.hasPrefix("unban <id>") }, "\(help)")
    }
}
