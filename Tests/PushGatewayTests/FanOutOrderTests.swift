// Per-topic order (issue 13, item 4; README "Fan-out order"): two pushes to one topic, to everyone or to one goim
// room, the second sent after the first was answered, reach every member in that order, whichever workers
// answered them.
import Foundation
import Testing

@Suite("Fan-out order across workers", .serialized, .timeLimit(.minutes(3)))
struct FanOutOrderTests {
    /// What one phase pushes: its name, the op its members receive, and the request of push `i`.
    struct Kind: Sendable, CustomStringConvertible {
        let description: String
        let op: UInt32
        let request: @Sendable (Int) -> [UInt8]
    }

    static let kinds = [
        Kind(description: "topic", op: 1000) {
            HTTP.request("POST", "/v1/push", body: pushBody(topic: "order", op: 1000, payload: "{\"i\":\($0)}"))
        },
        Kind(description: "all", op: 1001) {
            HTTP.request("POST", "/v1/push", body: pushBody(all: true, op: 1001, payload: "{\"i\":\($0)}"))
        },
        Kind(description: "goim room", op: 1002) {
            goimRequest(
                "POST", "/goim/push/room?operation=1002&type=live&room=order", body: Array("{\"i\":\($0)}".utf8))
        },
    ]

    /// Pushes per kind, each sent after the previous one was answered.
    static let pushes = 100
    /// Members that never read, so that each push keeps both workers busy for a while (see the test).
    static let ballast = 1000

    @Test("Two workers: 100 topic pushes, 100 broadcasts and 100 goim room pushes, each sent after the previous answer and answered by alternating workers, reach every member on both workers in the order sent")
    func pushesKeepTheirOrderOnEveryWorker() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"])
        defer { gateway.stop() }
        try await gateway.waitForWorkers(2)

        // Observers: devices of one user, in the room and the topic, until both workers hold some.
        var observers: [String: WireClient] = [:]
        var nodeOf: [String: String] = [:]
        while observers.count < 8 || Set(nodeOf.values).count < 2 {
            try #require(observers.count < 32, "32 observers all on one worker (SO_REUSEPORT): \(nodeOf)")
            let key = "o\(observers.count)"
            let client = try await WireClient.connect(gateway)
            try await client.auth(mid: "watch", key: key, roomID: "live://order")
            try client.send(op: Op.sub, seq: 2, text: #"{"topics":["order"]}"#)
            let reply = try await client.readFrame()
            #expect(
                reply?.op == 25 && reply?.json?["topics"] as? [String] == ["order"],
                "\(key): SUB reply \(String(describing: reply))")
            observers[key] = client
            nodeOf = try await gateway.waitForDevices("watch", keys: Array(observers.keys))
        }

        // Ballast: members that never read (a few KB each stay in the kernel's buffers). Without them a worker is
        // idle and reads the other worker's message from Redis long before the next request arrives; with them
        // each push keeps both workers writing for a few milliseconds, and the next request can be read first.
        let port = gateway.tcpPort
        let ballast = try await withThrowingTaskGroup(of: [WireClient].self) { group in
            for part in 0..<4 {
                group.addTask {
                    try await offload {
                        try (0..<Self.ballast / 4).map { i in
                            let client = try WireClient(port: port)
                            let key = "b\(part)-\(i)"
                            let auth = authBody(mid: .string(key), key: key, roomID: "live://order")
                            try client.send(op: Op.auth, seq: 1, text: auth)
                            try client.send(op: Op.sub, seq: 2, text: #"{"topics":["order"]}"#)
                            return client
                        }
                    }
                }
            }
            var all: [WireClient] = []
            for try await part in group { all += part }
            return all
        }
        defer { ballast.forEach { $0.close() } }
        let members = Self.ballast + observers.count
        var counted: HTTPResponse?
        let subscribed = try await eventually(timeout: 20) {
            counted = try await gateway.http(HTTP.request("GET", "/v1/topics/order"))
            return number(counted?.json?["online"]) == Double(members)
        }
        try #require(
            subscribed, "GET /v1/topics/order: expected \(members) members, last \(String(describing: counted))")

        // Keep-alive connections to the API, some to each worker, used in turn. (A request on a new connection is read
        // an iteration after its accept, never before a Redis message that came first; one on a connection the worker
        // watches already can be: libev runs an iteration's callbacks last-ready first.) Which worker each reached: a
        // broadcast's `delivered` is the answering worker's connection count (op 1999: the observers skip it).
        // Should both workers hold as many clients, one more client tells them apart.
        var pool: [HTTPConnection] = []
        defer { pool.forEach { $0.close() } }
        var extra: [WireClient] = []
        defer { extra.forEach { $0.close() } }
        var workerOf: [Int] = []
        while Set(workerOf).count < 2 {
            try #require(pool.count < 16, "16 API connections, all on one worker: \(workerOf)")
            if pool.count >= 6, extra.count < 3 {
                let client = try await WireClient.connect(gateway)
                try await client.auth(mid: .string("extra\(extra.count)"), key: "x")
                extra.append(client)
            } else {
                pool.append(try await HTTPConnection.connect(gateway))
            }
            workerOf = []
            for connection in pool {
                let response = try await connection.roundTrip(
                    HTTP.request("POST", "/v1/push", body: pushBody(all: true, op: 1999, payload: "0")))
                try #require(response.status == 200, "\(response)")
                workerOf.append(Int(number(response.json?["delivered"]) ?? -1))
            }
        }
        let byWorker = Set(workerOf).sorted().map { worker in
            pool.indices.filter { workerOf[$0] == worker }.map { pool[$0] }
        }

        // Each observer reads on its own thread until it has every push of every kind.
        let expected = Self.kinds.map(\.op)
        let nodes = nodeOf
        let readers = observers.sorted { $0.key < $1.key }.map { key, client in
            Task {
                try await offload {
                    var got: [UInt32: [Int]] = [:]
                    while expected.contains(where: { got[$0, default: []].count < Self.pushes }) {
                        guard case .frame(let frame) = try client.readSync(timeout: 20) else {
                            throw TestError("\(key) on \(nodes[key]!): closed or silent; got \(got)")
                        }
                        guard expected.contains(frame.op) else { continue }  // op 1999, heartbeat replies
                        guard let index = number(frame.json?["i"]) else { throw TestError("\(key): bad body \(frame)") }
                        got[frame.op, default: []].append(Int(index))
                    }
                    return (key, got)
                }
            }
        }

        // Push i of each kind on the next worker's connection, once push i − 1 was answered.
        for kind in Self.kinds {
            for i in 0..<Self.pushes {
                let connections = byWorker[i % byWorker.count]
                let connection = connections[(i / byWorker.count) % connections.count]
                let response = try await connection.roundTrip(kind.request(i), timeout: 10)
                try #require(response.status == 200, "\(kind) push \(i): \(response)")
            }
        }

        for reader in readers {
            let (key, got) = try await reader.value
            for kind in Self.kinds {
                let indexes = got[kind.op] ?? []
                #expect(
                    indexes == Array(0..<Self.pushes),
                    "\(kind): observer \(key) on \(nodeOf[key]!) got them in this order: \(indexes)")
            }
        }
    }

    @Test("goim room messages of two operations pipelined in one write reach a member in the order sent (a room's batches of one loop iteration go out in order)")
    func roomOperationsKeepTheirOrder() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let member = try await WireClient.connect(gateway)
        try await member.goimAuth(mid: 1, key: "k1", room: "live://mixed", accepts: [1000, 1001])
        let http = try await HTTPConnection.connect(gateway)
        defer { http.close() }
        var sent: [(op: UInt32, body: String)] = []
        for round in 0..<10 {
            let batch = (0..<4).map { (op: UInt32(1000 + $0 % 2), body: "r\(round)m\($0)") }
            try http.send(batch.map {
                goimRequest(
                    "POST", "/goim/push/room?operation=\($0.op)&type=live&room=mixed", body: Array($0.body.utf8))
            })
            for i in 0..<batch.count {
                let response = try #require(try await http.readResponse(), "round \(round): closed before answer \(i)")
                _ = expectGoimOK(response, "round \(round) push/room \(i)")
            }
            sent += batch
        }
        let frames = try await member.readRoomMessages(sent.count)
        #expect(
            frames.map(\.op) == sent.map(\.op) && frames.map(\.text) == sent.map(\.body),
            "got \(frames.map { "\($0.op):\($0.text)" })")
        try await member.expectNothingPending("each room message once")
    }

    @Test("Redis down: topic pushes, broadcasts and goim room pushes still reach this worker's members at once, in order (delivered counts them, nodes 0); Redis back: the same through Redis")
    func redisDownDeliversHere() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let member = try await WireClient.connect(gateway)
        try await member.auth(mid: "rd", key: "k", roomID: "live://rd")
        try member.send(op: Op.sub, seq: 2, text: #"{"topics":["rd"]}"#)
        #expect(try await member.readFrame()?.op == 25)
        // Redis confirms the node's SUBSCRIBE to the topic's channel: from then on its copies come back. (A push of
        // the moment before is delivered at once, and Redis may count this node among its receivers: `nodes` 1.)
        try await pause(0.3)

        func pushAll(_ round: String) async throws {
            for i in 0..<3 {
                let topic = try await gateway.push(pushBody(topic: "rd", op: 1000, payload: "\"\(round)t\(i)\""))
                #expect(
                    topic.status == 200 && number(topic.json?["delivered"]) == 1 && number(topic.json?["nodes"]) == 0,
                    "\(round) topic \(i): \(topic)")
                let all = try await gateway.push(pushBody(all: true, op: 1001, payload: "\"\(round)a\(i)\""))
                #expect(
                    all.status == 200 && number(all.json?["delivered"]) == 1 && number(all.json?["nodes"]) == 0,
                    "\(round) all \(i): \(all)")
                let body = Array("\"\(round)r\(i)\"".utf8)
                let room = try await gateway.http(
                    goimRequest("POST", "/goim/push/room?operation=1002&type=live&room=rd", body: body))
                _ = expectGoimOK(room, "\(round) room \(i)")
            }
            var got: [String] = []
            for _ in 0..<9 { got.append(try #require(try await member.readFrame(), "\(round): closed").text) }
            let sent = (0..<3).flatMap { ["\"\(round)t\($0)\"", "\"\(round)a\($0)\"", "\"\(round)r\($0)\""] }
            #expect(got == sent, "\(round)")
            try await member.expectNothingPending("\(round): each once")
        }

        try await pushAll("up")
        gateway.stopRedis()
        let down = try await eventually(timeout: 5) {
            (try? await gateway.http(HTTP.request("GET", "/healthz")))?.status == 503
        }
        try #require(down, "/healthz should answer 503 while Redis is down")
        try await pushAll("down")
        try await gateway.startRedis()
        let back = try await eventually(timeout: 10) {
            (try? await gateway.http(HTTP.request("GET", "/healthz")))?.status == 200
        }
        try #require(back, "/healthz 200 once Redis is back")
        try await pause(0.5)  // the subscriptions confirmed again: the copies come back
        try await pushAll("back")
    }
}
