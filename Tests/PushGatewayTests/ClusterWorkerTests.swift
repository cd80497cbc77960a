// The gateway as several nodes (SPEC §1 process model, §5 nodes and channels; issue 4): a master with two
// workers, clients spread over both, pushes and a kick crossing workers.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Cluster: two workers of one master", .serialized, .timeLimit(.minutes(2)))
struct ClusterWorkerTests {
    // MARK: - 1. Two workers

    @Test("Two workers: 20 connections spread over both nodes; user, stored and broadcast pushes reach every worker; a kick crosses workers")
    func twoWorkers() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"])
        defer { gateway.stop() }
        let workers = try await gateway.waitForWorkers(2)

        // 12 devices of "multi", 8 users of one device each: 20 connections, SO_REUSEPORT spreads them.
        let multiKeys = (0..<12).map { "d\($0)" }
        var multi: [String: WireClient] = [:]
        var solos: [WireClient] = []
        for key in multiKeys {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: "multi", key: key)
            multi[key] = client
        }
        for i in 0..<8 {
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: .string("solo\(i)"), key: "k")
            solos.append(client)
        }
        let all = multiKeys.map { multi[$0]! } + solos

        var nodes: [[String: Any]] = []
        let listed = try await eventually(timeout: 5) {
            nodes = try await gateway.nodeList()
            let counts = nodes.map { Int(number($0["connections"]) ?? -1) }
            return nodes.count == 2 && counts.reduce(0, +) == 20 && counts.allSatisfy { $0 > 0 }
        }
        #expect(listed, "GET /v1/nodes within 5 s: expected 2 nodes, both with connections, summing to 20; got \(nodes)")
        let nodePIDs = Set(nodes.compactMap { ($0["id"] as? String).flatMap(pidOfNode) })
        #expect(nodePIDs == Set(workers), "node ids \(nodes.map { $0["id"] ?? "?" }) vs worker pids \(workers)")

        let deviceNodes = try await gateway.waitForDevices("multi", keys: multiKeys)
        let byNode = Dictionary(grouping: multiKeys) { deviceNodes[$0]! }
        try #require(
            byNode.count == 2,
            "all 12 devices of multi on one worker (SO_REUSEPORT, odds 1 in 2048), cannot test crossing: \(deviceNodes)")

        // A transient push (answered by one worker) reaches the devices on both; online counts all 12.
        let transient = try await gateway.pushLogged(pushBody(users: ["multi"], op: 1001, payload: #"{"t":1}"#, store: false))
        #expect(transient.status == 200, "\(transient)")
        #expect(transient.online("multi") == 12, "online must count the devices on both workers: \(transient)")
        for key in multiKeys {
            try await multi[key]!.expectMessage(op: 1001, body: Array(#"{"t":1}"#.utf8), "transient to multi/\(key)")
        }

        // 10 stored pushes, concurrently over 2 connections: every device gets seqs 1…10 in order.
        let bodies = (0..<10).map { storedPushBody(users: ["multi"], op: 1002, payload: "{\"i\":\($0)}") }
        let (responses, errors) = try await pushConcurrently(port: gateway.httpPort, bodies: bodies, connections: 2)
        #expect(errors.isEmpty, "\(errors)")
        var payloadOfSeq: [Int: String] = [:]
        for (i, response) in responses.enumerated() {
            #expect(response?.status == 200, "stored push \(i): \(String(describing: response))")
            #expect(response?.online("multi") == 12, "stored push \(i): \(String(describing: response))")
            if let seq = response?.seq("multi") { payloadOfSeq[seq] = "{\"i\":\(i)}" }
        }
        #expect(Set(payloadOfSeq.keys) == Set(1...10), "seqs answered: \(payloadOfSeq.keys.sorted())")
        for key in multiKeys {
            let frames = try await multi[key]!.readStored(through: 10)
            expectSeqs(frames.map { Int($0.seq) }, 1...10, "multi/\(key) on \(deviceNodes[key]!)")
            for frame in frames where payloadOfSeq[Int(frame.seq)] != frame.text {
                Issue.record("multi/\(key): seq \(frame.seq) carried \(frame.text), answered for \(payloadOfSeq[Int(frame.seq)] ?? "?")")
            }
        }

        // A broadcast reaches all 20 connections on both workers.
        let broadcast = try await gateway.pushLogged(pushBody(all: true, op: 1003, payload: #""all""#, store: false))
        #expect(broadcast.status == 200, "\(broadcast)")
        for (i, client) in all.enumerated() {
            try await client.expectMessage(op: 1003, body: Array(#""all""#.utf8), "broadcast, connection \(i)")
        }

        // Kick one device on each worker over ONE keep-alive connection (one worker answers both): one of the two
        // kicks is for a device on the other worker.
        let victims = byNode.values.map { $0[0] }
        let http = try await HTTPConnection.connect(gateway)
        defer { http.close() }
        for key in victims {
            let response = try await http.roundTrip(HTTP.request("DELETE", "/v1/users/multi/devices/\(key)"))
            #expect(response.status == 200, "kick multi/\(key): \(response)")
        }
        for key in victims {
            let frames = try await multi[key]!.readUntilClosed(timeout: 5)
            #expect(frames.count == 1, "kicked multi/\(key) on \(deviceNodes[key]!): expected DISCONNECT then close, got \(frames)")
            let body = disconnectBody(frames.first)
            #expect(body?["reason"] as? String == "kicked", "multi/\(key): \(frames)")
            #expect(body?["reconnect"] as? Bool == false, "multi/\(key): \(frames)")
        }
        for key in multiKeys where !victims.contains(key) {
            try await multi[key]!.expectNothingPending("multi/\(key) was not kicked")
        }
        for client in solos { try await client.expectNothingPending("solo users got nothing addressed to multi") }
        #expect(try await gateway.deviceKeys("multi").count == 10, "sessions after kicking 2 of 12")
    }
}
