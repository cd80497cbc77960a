// Limits on clients (SPEC §8): new connections per address per second and open connections per address (closed
// at accept, counted), and frames per connection (ERROR rate_limited, then a close; heartbeats and ACKs free).
// Limited clients connect from 127.0.0.x addresses other than 127.0.0.1, or claim an address in a PROXY header.
import Foundation
import Testing

@Suite("Client limits", .timeLimit(.minutes(1)))
struct ClientLimitTests {
    @Test("connect_rate: a burst of connections from one address, the next closed at accept, served again later")
    func connectRate() async throws {
        let gateway = try await GatewayProcess.start([
            "PUSHGW_LIMITS_CONNECT_RATE": "1", "PUSHGW_LIMITS_CONNECT_BURST": "3",
        ])
        defer { gateway.stop() }
        // Connected one after the other first (a few milliseconds), so the bucket cannot refill in between.
        var clients: [WireClient] = []
        for _ in 0..<4 { clients.append(try await WireClient.connect(gateway, from: "127.0.0.21")) }
        for (index, client) in clients.prefix(3).enumerated() {
            #expect(number(try await client.auth(mid: .string("burst-\(index)"), key: "k")["code"]) == 0, "\(index)")
        }
        try await clients[3].expectClosedAtAccept("the fourth connection within a second")
        let other = try await WireClient.connect(gateway, from: "127.0.0.22")
        #expect(number(try await other.auth(mid: "other-address", key: "k")["code"]) == 0, "another address")
        try await pause(1.2)
        let later = try await WireClient.connect(gateway, from: "127.0.0.21")
        #expect(number(try await later.auth(mid: "later", key: "k")["code"]) == 0, "a token came back")
        try await gateway.expectCounter("pushgw_refused_connect_rate_total", atLeast: 1)
        try await gateway.expectCounter("pushgw_connections_closed_total{reason=\"refused\"}", atLeast: 1)
        #expect(try await gateway.admin("conns").last == "total 5")
    }

    @Test("max_conns_per_ip counts the PROXY header's address: one more is closed at accept, room again after a close")
    func maxConnectionsPerAddress() async throws {
        let gateway = try await GatewayProcess.start(
            behindProxy.merging(["PUSHGW_LIMITS_MAX_CONNS_PER_IP": "2"]) { $1 })
        defer { gateway.stop() }
        let first = try await WireClient.connect(gateway, claiming: "203.0.113.40")
        try await first.auth(mid: "nat-1", key: "k")
        let second = try await WireClient.connect(gateway, claiming: "203.0.113.40")
        try await second.auth(mid: "nat-2", key: "k")
        let third = try await WireClient.connect(gateway, claiming: "203.0.113.40")
        try await third.expectClosedAtAccept("a third connection from 203.0.113.40")
        // The same balancer (127.0.0.1) relays another client: its own count.
        let neighbour = try await WireClient.connect(gateway, claiming: "203.0.113.41")
        #expect(number(try await neighbour.auth(mid: "neighbour", key: "k")["code"]) == 0)
        first.close()
        let again = try await eventually(timeout: 3) {
            let client = try await WireClient.connect(gateway, claiming: "203.0.113.40")
            guard let reply = try? await client.auth(mid: "nat-3", key: "k") else { return false }
            return number(reply["code"]) == 0
        }
        #expect(again, "a place came back when the first connection closed")
        try await gateway.expectCounter("pushgw_refused_max_conns_per_ip_total", atLeast: 1)
    }

    @Test("client_rate: ERROR rate_limited for dropped frames; heartbeats and ACKs free; the debt repaid; then a close")
    func frameRate() async throws {
        let gateway = try await GatewayProcess.start([
            "PUSHGW_LIMITS_CLIENT_RATE": "5", "PUSHGW_LIMITS_CLIENT_BURST": "5",
        ])
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "chatty", key: "k")
        // 8 frames at once: the burst of 5 is answered, the 3 others dropped with a (non-fatal) ERROR each.
        try client.sendRaw((1...8).flatMap { Wire.frame(op: Op.subOps, seq: UInt32($0), text: "1000") })
        var frames: [Frame] = []
        for _ in 1...8 { frames.append(try #require(try await client.readFrame())) }
        #expect(frames.prefix(5).allSatisfy { $0.op == Op.subOpsReply }, "\(frames)")
        #expect(frames.suffix(3).map(\.errorCode) == ["rate_limited", "rate_limited", "rate_limited"], "\(frames)")
        #expect(frames.suffix(3).map(\.seq) == [6, 7, 8] && frames.last.map { number($0.json?["op"]) } == 14)

        // Heartbeats and ACKs do not count: 100 of each at once, every heartbeat answered, no ERROR.
        try client.sendRaw((1...100).flatMap { Wire.frame(op: Op.heartbeat, seq: UInt32(100 + $0)) })
        for index in 1...100 {
            let reply = try #require(try await client.readFrame())
            #expect(reply.op == Op.heartbeatReply && reply.seq == UInt32(100 + index), "\(reply)")
        }
        try client.sendRaw((1...100).flatMap { _ in Wire.frame(op: Op.ack, text: #"{"seq":0}"#) })
        try await client.expectNothingPending("ACKs are not rate limited")

        // The debt (3 frames) is repaid at 5 a second: served again.
        try await pause(1.5)
        try client.send(op: Op.subOps, seq: 30, text: "1001")
        #expect(try await client.readFrame()?.op == Op.subOpsReply)

        // A flood: a few answered, then ERRORs, the last one fatal, then the close.
        try client.sendRaw((1...40).flatMap { Wire.frame(op: Op.subOps, seq: UInt32(40 + $0), text: "1000") })
        let flood = try await client.readUntilClosed()
        let firstError = try #require(flood.firstIndex { $0.op == Op.error }, "\(flood)")
        #expect(flood[..<firstError].allSatisfy { $0.op == Op.subOpsReply } && firstError <= 5, "\(flood)")
        #expect(flood[firstError...].allSatisfy { $0.errorCode == "rate_limited" }, "\(flood)")
        #expect((6...11).contains(flood.count - firstError), "a burst of drops and the closing one: \(flood)")
        try await gateway.expectCounter("pushgw_rate_limited_frames_total", atLeast: 9)
        try await gateway.expectCounter("pushgw_rate_limited_closes_total", atLeast: 1)
        try await gateway.expectCounter("pushgw_connections_closed_total{reason=\"rate_limited\"}", atLeast: 1)
    }
}
