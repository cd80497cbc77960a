// Connections closed in the middle of a fan-out (SPEC §2, "a client that does not read"): they leave the indexes at
// once, their descriptors are closed after the fan-out, and every other receiver gets the message.
import Foundation
import Testing

@Suite("Closes during a fan-out", .timeLimit(.minutes(2)))
struct DeferredCloseTests {
    /// Slow clients (4 KiB receive buffers, never read) sit among fast ones; broadcasts fill the slow ones' write
    /// queues, so each is closed inside a broadcast's loop over the connections.
    @Test("Broadcasts close the clients that never read, mid fan-out; the others get every message, in order")
    func broadcastClosesSlowReaders() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_MAX_WRITE_QUEUE": "65536"])
        defer { gateway.stop() }
        let port = gateway.tcpPort
        let slowCount = 8
        let fastCount = 24
        // Interleaved, so that the slow ones are spread through the index the fan-out walks.
        let clients = try await offload {
            try (0..<(slowCount + fastCount)).map { index in
                try WireClient(port: port, receiveBufferSize: index % 4 == 0 ? 4096 : nil)
            }
        }
        defer { clients.forEach { $0.close() } }
        let slow = clients.enumerated().filter { $0.offset % 4 == 0 }.map(\.element)
        let fast = clients.enumerated().filter { $0.offset % 4 != 0 }.map(\.element)
        #expect(slow.count == slowCount && fast.count == fastCount)
        for (index, client) in clients.enumerated() {
            try await client.auth(mid: .string("u\(index)"), key: "k\(index)")
        }

        // Each fast client reads on its own thread until the "done" broadcast (op 1999).
        let readers = fast.map { client in
            Task {
                try await offload {
                    var indexes: [Int] = []
                    while true {
                        guard case .frame(let frame) = try client.readSync(timeout: 15) else {
                            throw TestError("fast client closed or silent after \(indexes.count) messages")
                        }
                        if frame.op == 1999 { return indexes }
                        guard frame.op == 1000, let index = number(frame.json?["i"]) else {
                            throw TestError("unexpected \(frame)")
                        }
                        indexes.append(Int(index))
                    }
                }
            }
        }

        let pad = String(repeating: "x", count: 8000)
        var pushed = 0
        var lastDelivered = 0
        while pushed < 2000 {
            let response = try await gateway.push(pushBody(all: true, payload: "{\"i\":\(pushed),\"pad\":\"\(pad)\"}"))
            try #require(response.status == 200, "broadcast \(pushed): \(response)")
            pushed += 1
            lastDelivered = Int(number(response.json?["delivered"]) ?? -1)
            if lastDelivered <= fastCount { break }
        }
        #expect(lastDelivered == fastCount, "after \(pushed) broadcasts of 8 KB, \(lastDelivered) connections got the last")
        // More broadcasts after the drops reach exactly the fast clients.
        for _ in 0..<3 {
            let response = try await gateway.push(pushBody(all: true, payload: "{\"i\":\(pushed),\"pad\":\"\(pad)\"}"))
            #expect(number(response.json?["delivered"]) == Double(fastCount), "\(response)")
            pushed += 1
        }
        let done = try await gateway.push(pushBody(all: true, op: 1999, payload: "0"))
        #expect(number(done.json?["delivered"]) == Double(fastCount), "\(done)")

        for (index, reader) in readers.enumerated() {
            let indexes = try await reader.value
            #expect(indexes == Array(0..<pushed), "fast client \(index) got \(indexes.count) of \(pushed) messages")
        }
        // The gateway is still up and the fast clients' connections still work.
        _ = try await fast[0].heartbeat(seq: 5)
        #expect(try await gateway.http(HTTP.request("GET", "/healthz")).status == 200)

        // Every slow client, reading at last, finds its connection closed (possibly mid-frame: the queue was dropped).
        let unclosed = try await offload {
            var unclosed = 0
            for client in slow {
                var closed = false
                let deadline = Date().addingTimeInterval(10)
                while !closed && Date() < deadline {
                    if case .closed = try client.readSync(timeout: 5, allowTruncated: true) { closed = true }
                }
                if !closed { unclosed += 1 }
            }
            return unclosed
        }
        #expect(unclosed == 0, "\(unclosed) of \(slowCount) slow clients were not closed")
        // Each counted once, as write_queue_full.
        var text = ""
        let counted = try await eventually(timeout: 5) {
            text = try await gateway.metrics().text
            return metricValue(text, #"pushgw_connections_closed_total{reason="write_queue_full"}"#) == Double(slowCount)
        }
        #expect(counted, "\(text.split(separator: "\n").filter { $0.contains("closed_total") })")
    }
}
