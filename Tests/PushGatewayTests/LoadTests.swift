// Back-pressure (a client that never reads) and many connections at once (SPEC §2).
import Foundation
import Testing

@Suite("Load and back-pressure", .timeLimit(.minutes(2)))
struct LoadTests {
    @Test("A client that never reads is closed past max_write_queue; another client of the same pushes gets all of them")
    func slowClientClosed() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_MAX_WRITE_QUEUE": "65536"])
        defer { gateway.stop() }
        // A small receive buffer keeps the slow client's TCP window small.
        let slow = try await WireClient.connect(gateway, receiveBufferSize: 4096)
        let fast = try await WireClient.connect(gateway)
        try await slow.auth(mid: "slow", key: "k")
        try await fast.auth(mid: "fast", key: "k")

        // The fast client reads on its own until the "done" message (op 1999).
        let reader = Task {
            var indexes: [Int] = []
            var problems: [String] = []
            while true {
                guard let frame = try await fast.readFrame(timeout: 10) else {
                    problems.append("fast client closed")
                    break
                }
                if frame.op == 1999 { break }
                if frame.op != 1000 {
                    problems.append("unexpected \(frame)")
                    continue
                }
                if let index = number(frame.json?["i"]) { indexes.append(Int(index)) } else { problems.append("bad body") }
            }
            return (indexes, problems)
        }

        let pad = String(repeating: "x", count: 4000)
        let http = try await HTTPConnection.connect(gateway)
        defer { http.close() }
        var pushed = 0
        var slowClosedAt: Int?
        while pushed < 4000 {
            let body = pushBody(users: ["slow", "fast"], payload: "{\"i\":\(pushed),\"pad\":\"\(pad)\"}")
            let response = try await http.roundTrip(HTTP.request("POST", "/v1/push", body: body))
            #expect(response.status == 200, "push \(pushed): \(response)")
            guard response.status == 200 else { break }
            pushed += 1
            let online = response.json?["online"] as? [String: Any]
            #expect(number(online?["fast"]) == 1, "push \(pushed - 1): the fast client is gone: \(response)")
            if number(online?["slow"]) ?? 0 == 0 {
                // The slow client was dropped while delivering an earlier push.
                slowClosedAt = pushed
                break
            }
        }
        let closedAt = try #require(slowClosedAt, "slow client still online after \(pushed) pushes of 4 KB")
        // A few more pushes after the drop, then the end marker.
        for _ in 0..<5 {
            let body = pushBody(users: ["slow", "fast"], payload: "{\"i\":\(pushed),\"pad\":\"\(pad)\"}")
            let response = try await http.roundTrip(HTTP.request("POST", "/v1/push", body: body))
            #expect(response.status == 200, "\(response)")
            pushed += 1
        }
        let done = try await http.roundTrip(HTTP.request("POST", "/v1/push", body: pushBody(users: ["fast"], op: 1999, payload: "0")))
        #expect(done.status == 200, "\(done)")

        let (indexes, problems) = try await reader.value
        #expect(problems.isEmpty, "\(problems)")
        #expect(indexes == Array(0..<pushed), "the fast client got \(indexes.count) of \(pushed) messages")

        // The slow client, reading at last, finds fewer messages than were pushed and then the close (possibly in
        // the middle of a frame: the server dropped what it had queued).
        var slowCount = 0
        var slowOrdered = true
        let deadline = Date().addingTimeInterval(20)
        var closed = false
        while Date() < deadline {
            switch try await slow.read(timeout: 5, allowTruncated: true) {
            case .frame(let frame):
                if frame.op == 1000 {
                    if number(frame.json?["i"]).map({ Int($0) }) != slowCount { slowOrdered = false }
                    slowCount += 1
                }
            case .closed: closed = true
            case .timedOut: break
            }
            if closed { break }
        }
        #expect(closed, "the slow client's connection was not closed")
        #expect(slowCount < closedAt, "slow client got \(slowCount) of the \(closedAt) pushes before its drop")
        #expect(slowOrdered, "the slow client's messages before the drop were not whole and in order")
    }

    @Test("300 connections opened at once all authenticate and all get a broadcast")
    func threeHundredConnections() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let port = gateway.tcpPort
        let count = 300
        let clients = try await offload { try (0..<count).map { _ in try WireClient(port: port) } }
        defer { clients.forEach { $0.close() } }
        for (index, client) in clients.enumerated() {
            try client.send(
                op: Op.auth, seq: UInt32(index + 1),
                text: authBody(mid: .string("c\(index)"), key: "key\(index)", roomID: "big"))
        }
        let failures = try await offload {
            var failures: [String] = []
            for (index, client) in clients.enumerated() {
                switch try client.readSync(timeout: 10) {
                case .frame(let frame):
                    if frame.op != Op.authReply || frame.seq != UInt32(index + 1)
                        || frame.json?["key"] as? String != "key\(index)"
                    {
                        failures.append("client \(index): \(frame)")
                    }
                case .closed: failures.append("client \(index): closed")
                case .timedOut: failures.append("client \(index): no AUTH_REPLY")
                }
            }
            return failures
        }
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(10))")
        #expect(try await clients[0].heartbeat(seq: 7) == UInt32(count))

        let response = try await gateway.push(pushBody(all: true, op: 1000, payload: #"{"to":"all"}"#))
        #expect(response.status == 200, "\(response)")
        #expect(number(response.json?["delivered"]) == Double(count), "\(response)")
        let missing = try await offload {
            var missing = 0
            for client in clients {
                guard case .frame(let frame) = try client.readSync(timeout: 10), frame.op == 1000,
                    frame.text == #"{"to":"all"}"#
                else {
                    missing += 1
                    continue
                }
            }
            return missing
        }
        #expect(missing == 0, "\(missing) of \(count) connections did not get the broadcast")
    }

    /// A fan-out larger than one flush slice (1,024 connections per loop iteration) goes out over several
    /// iterations: `/metrics` counts the cut slices, every connection still gets every message once and in order.
    @Test("A broadcast to 2,500 connections is written in slices, in order, to every one")
    func fanOutInSlices() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let port = gateway.tcpPort
        let count = 2_500
        let clients = try await offload { try (0..<count).map { _ in try WireClient(port: port) } }
        defer { clients.forEach { $0.close() } }
        for (index, client) in clients.enumerated() {
            try client.send(op: Op.auth, seq: 1, text: authBody(mid: .string("s\(index)"), key: "k\(index)"))
        }
        let unauthenticated = try await offload {
            try clients.filter { client in
                guard case .frame(let frame) = try client.readSync(timeout: 20) else { return true }
                return frame.op != Op.authReply
            }.count
        }
        #expect(unauthenticated == 0, "\(unauthenticated) of \(count) connections got no AUTH_REPLY")
        let before = metricValue(try await gateway.metrics().text, "pushgw_flush_slices_total") ?? 0

        let messages = 3
        for index in 0..<messages {
            let response = try await gateway.push(pushBody(all: true, op: 1000, payload: "{\"n\":\(index)}"))
            #expect(response.status == 200, "\(response)")
            #expect(number(response.json?["delivered"]) == Double(count), "\(response)")
        }
        let wrong = try await offload {
            var wrong: [String] = []
            for (index, client) in clients.enumerated() {
                for expected in 0..<messages {
                    guard case .frame(let frame) = try client.readSync(timeout: 20), frame.op == 1000,
                        frame.text == "{\"n\":\(expected)}"
                    else {
                        wrong.append("client \(index), message \(expected)")
                        break
                    }
                }
            }
            return wrong
        }
        #expect(wrong.isEmpty, "\(wrong.count) connections missed messages: \(wrong.prefix(5))")
        // The connections stay usable: a heartbeat after the fan-out is answered.
        _ = try await clients[count - 1].heartbeat(seq: 9)

        var text = ""
        let sliced = try await eventually(timeout: 5) {
            text = try await gateway.metrics().text
            // Each broadcast needs at least two cut slices for 2,500 connections.
            return (metricValue(text, "pushgw_flush_slices_total") ?? 0) >= before + Double(2 * messages)
        }
        #expect(sliced, "pushgw_flush_slices_total did not grow by \(2 * messages): \(text.split(separator: "\n").filter { $0.contains("flush") })")
    }
}
