// Stored messages reach every connection of the user in strictly increasing seq order with no gaps (SPEC §2),
// even when the pushes race each other over several HTTP connections.
import Foundation
import Testing

@Suite("Stored message ordering", .timeLimit(.minutes(1)))
struct OrderingTests {
    @Test("400 pushes over 8 pipelined keep-alive connections: 400 distinct seqs; the client gets exactly 1…400 in order", arguments: TestStorage.allCases)
    func concurrentPushesArriveInOrder(storage: TestStorage) async throws {
        let gateway = try await GatewayProcess.start(on: storage)
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "ord", key: "k")

        let connectionCount = 8
        let perConnection = 50
        let total = connectionCount * perConnection
        let port = gateway.httpPort

        // The client reads while the pushes are in flight.
        let reader = Task { try await client.readFrames(total, timeout: 20) }

        // Each connection writes its 50 requests in bursts of 10 (pipelined) and reads the answers in order.
        let answers = try await withThrowingTaskGroup(of: [(payload: String, response: HTTPResponse)].self) { group in
            for connectionIndex in 0..<connectionCount {
                group.addTask {
                    try await offload {
                        let connection = try HTTPConnection(port: port)
                        defer { connection.close() }
                        var out: [(payload: String, response: HTTPResponse)] = []
                        for burst in stride(from: 0, to: perConnection, by: 10) {
                            let payloads = (burst..<burst + 10).map { "{\"c\":\(connectionIndex),\"i\":\($0)}" }
                            try connection.send(payloads.map {
                                HTTP.request("POST", "/v1/push", body: storedPushBody(users: ["ord"], op: 1000 + connectionIndex, payload: $0))
                            })
                            for payload in payloads {
                                guard let response = try connection.readResponseSync(timeout: 10) else {
                                    throw TestError("connection \(connectionIndex) closed before the answer to \(payload)")
                                }
                                out.append((payload, response))
                            }
                        }
                        return out
                    }
                }
            }
            var all: [(payload: String, response: HTTPResponse)] = []
            for try await part in group { all += part }
            return all
        }

        #expect(answers.count == total)
        var payloadOfSeq: [Int: String] = [:]
        for answer in answers {
            #expect(answer.response.status == 200, "\(answer.payload): \(answer.response)")
            guard let seq = answer.response.seq("ord") else {
                Issue.record("\(answer.payload): no seq in \(answer.response)")
                continue
            }
            #expect(payloadOfSeq[seq] == nil, "seq \(seq) given to both \(payloadOfSeq[seq] ?? "") and \(answer.payload)")
            payloadOfSeq[seq] = answer.payload
        }
        #expect(Set(payloadOfSeq.keys) == Set(1...total), "the seqs answered are not exactly 1…\(total)")

        let frames = try await reader.value
        let seqs = frames.map { Int($0.seq) }
        #expect(seqs == Array(1...total), "the client must get 1…\(total) in order; first wrong at index \(String(describing: zip(seqs, 1...total).enumerated().first { $0.element.0 != $0.element.1 }?.offset)) of \(seqs)")
        for frame in frames {
            guard let payload = payloadOfSeq[Int(frame.seq)] else { continue }
            #expect(frame.text == payload, "seq \(frame.seq): frame body \(frame.text) but the push answered with seq \(frame.seq) was \(payload)")
            let connectionIndex = jsonObject(frame.body).flatMap { number($0["c"]) }.map(Int.init) ?? -1
            #expect(frame.op == UInt32(1000 + connectionIndex), "seq \(frame.seq): \(frame)")
        }
        try await client.expectNothingPending("no duplicates after seq \(total)")
    }

    @Test("Two devices of one user both get every stored message in order; a third connecting later with last_seq gets the backlog", arguments: TestStorage.allCases)
    func twoDevicesAndALateThird(storage: TestStorage) async throws {
        let gateway = try await GatewayProcess.start(on: storage)
        defer { gateway.stop() }
        let phone = try await WireClient.connect(gateway)
        let tablet = try await WireClient.connect(gateway)
        try await phone.auth(mid: "dv", key: "phone", lastSeq: 0)
        try await tablet.auth(mid: "dv", key: "tablet")
        try await phone.expectNothingPending("nothing stored yet")

        // 30 pushes, 10 at a time pipelined on one connection.
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        for burst in stride(from: 1, through: 30, by: 10) {
            try connection.send((burst..<burst + 10).map {
                HTTP.request("POST", "/v1/push", body: storedPushBody(users: ["dv"], payload: "{\"m\":\($0)}"))
            })
            for index in burst..<burst + 10 {
                let response = try #require(try await connection.readResponse(), "closed before push \(index)")
                #expect(response.status == 200 && response.seq("dv") == index, "push \(index): \(response)")
                #expect(response.online("dv") == 2, "push \(index): \(response)")
            }
        }
        for (name, device) in [("phone", phone), ("tablet", tablet)] {
            let frames = try await device.readFrames(30)
            #expect(frames.map(\.seq) == (1...30).map(UInt32.init), "\(name): \(frames.map(\.seq))")
            #expect(frames.map(\.text) == (1...30).map { "{\"m\":\($0)}" }, "\(name)")
            try await device.expectNothingPending("\(name): each message once")
        }

        // The phone has acknowledged up to 12; a laptop that saw up to 12 connects and gets 13…30.
        try phone.send(op: Op.ack, seq: 7, text: #"{"seq":12}"#)
        let laptop = try await WireClient.connect(gateway)
        let reply = try await laptop.auth(mid: "dv", key: "laptop", lastSeq: 12)
        #expect(number(reply["last_seq"]) == 30, "\(reply)")
        let backlog = try await laptop.readFrames(18)
        #expect(backlog.map(\.seq) == (13...30).map(UInt32.init), "laptop backlog: \(backlog.map(\.seq))")
        #expect(backlog.map(\.text) == (13...30).map { "{\"m\":\($0)}" }, "laptop backlog")
        try await laptop.expectNothingPending("laptop: only 13…30")

        // The next message reaches all three devices.
        let next = try await gateway.push(storedPushBody(users: ["dv"], payload: #"{"m":31}"#))
        #expect(next.status == 200 && next.seq("dv") == 31 && next.online("dv") == 3, "\(next)")
        for (name, device) in [("phone", phone), ("tablet", tablet), ("laptop", laptop)] {
            let frame = try await device.readFrame()
            #expect(frame?.seq == 31 && frame?.text == #"{"m":31}"#, "\(name): \(String(describing: frame))")
        }
    }
}
