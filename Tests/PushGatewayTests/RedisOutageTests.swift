// Redis going away and coming back under traffic (SPEC §3: 503, never a 200 for a push that was not stored;
// §5: connections stay up, the gateway reconnects, nothing acknowledged is lost).
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Redis outage", .timeLimit(.minutes(2)))
struct RedisOutageTests {
    @Test("Redis killed and restarted mid-traffic: 503 while down, client stays, then 200 again and no acknowledged push lost")
    func redisRestartMidTraffic() async throws {
        let gateway = try await GatewayProcess.start(redis: .persistentServer)
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        let reply = try await client.auth(mid: "out", key: "k", lastSeq: 0)
        #expect(number(reply["last_seq"]) == 0, "\(reply)")

        var acknowledged: [(seq: Int, payload: String)] = []  // pushes answered 200, in order
        var live: [Frame] = []
        var pushCount = 0
        var heartbeatSeq: UInt32 = 1000

        /// One push, then a heartbeat round trip that collects whatever the client was sent meanwhile.
        func pushOnce(_ phase: String) async throws -> HTTPResponse {
            pushCount += 1
            let payload = "{\"n\":\(pushCount),\"phase\":\"\(phase)\"}"
            let response = try await gateway.push(storedPushBody(users: ["out"], payload: payload))
            if response.status == 200 {
                if let seq = response.seq("out") {
                    acknowledged.append((seq, payload))
                } else {
                    Issue.record("\(phase): 200 without a seq: \(response)")
                }
            }
            heartbeatSeq += 1
            live += try await client.framesBeforeHeartbeat(seq: heartbeatSeq)
            return response
        }

        // 1. Redis up.
        for _ in 0..<25 {
            let response = try await pushOnce("before")
            #expect(response.status == 200, "before the outage: \(response)")
        }

        // 2. Redis crashes (SIGKILL). Every push now answers 503; the client stays and its heartbeats are answered.
        gateway.stopRedis(kill: true)
        var downPushes = 0
        var sawUnhealthy = false
        let downUntil = Date().addingTimeInterval(3)
        while Date() < downUntil || downPushes < 10 || !sawUnhealthy {
            let response = try await pushOnce("down")
            downPushes += 1
            #expect(response.status == 503, "push \(pushCount) while Redis is down: \(response)")
            #expect(response.errorCode == "unavailable", "push \(pushCount) while Redis is down: \(response)")
            if !sawUnhealthy {
                let health = try await gateway.http(HTTP.request("GET", "/healthz"))
                sawUnhealthy = health.status == 503
            }
            if downPushes > 200 { break }
            try await pause(0.02)
        }
        #expect(sawUnhealthy, "/healthz never answered 503 while Redis was down")
        #expect(try await client.heartbeat(seq: 5) == 0, "the client stays connected while Redis is down")

        // 3. Redis back on the same port with its append-only file.
        try await gateway.startRedis()
        let restartedAt = Date()
        var firstOK: Double?
        while Date().timeIntervalSince(restartedAt) < 12 {
            let response = try await pushOnce("recovering")
            #expect(response.status == 200 || response.status == 503, "push \(pushCount) while Redis comes back: \(response)")
            if response.status == 200 {
                firstOK = Date().timeIntervalSince(restartedAt)
                break
            }
            try await pause(0.05)
        }
        let recovered = try #require(firstOK, "no push answered 200 within 12 s of Redis coming back")
        #expect(recovered < 10, "pushes answered 200 again only \(recovered) s after Redis came back")
        let healthy = try await eventually(timeout: 3) {
            (try? await gateway.http(HTTP.request("GET", "/healthz")))?.status == 200
        }
        #expect(healthy, "/healthz should answer 200 once pushes are stored again")

        // 4. Redis up again.
        for _ in 0..<25 {
            let response = try await pushOnce("after")
            #expect(response.status == 200, "after the outage: \(response)")
        }
        try await pause(0.3)  // a gap fill waits a few milliseconds before pulling
        heartbeatSeq += 1
        live += try await client.framesBeforeHeartbeat(seq: heartbeatSeq)

        // Every push answered 200 has its own seq, in the order they were answered.
        let seqs = acknowledged.map(\.seq)
        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count, "seqs answered 200 must increase: \(seqs)")
        #expect(acknowledged.count >= 51, "\(acknowledged.count) pushes answered 200")

        // None is lost: SYNC after 0 has each with the payload it was pushed with.
        let synced = try await client.syncAll(after: 0, limit: 100)
        var syncedBySeq: [Int: String] = [:]
        for frame in synced { syncedBySeq[Int(frame.seq)] = frame.text }
        for push in acknowledged {
            #expect(syncedBySeq[push.seq] == push.payload,
                "push answered 200 with seq \(push.seq) (\(push.payload)) is \(syncedBySeq[push.seq].map { "SYNCed as \($0)" } ?? "missing from SYNC")")
        }

        // What the client got live: strictly increasing, and each acknowledged push delivered live or in SYNC.
        let liveSeqs = live.map { Int($0.seq) }
        #expect(zip(liveSeqs, liveSeqs.dropFirst()).allSatisfy { $0 < $1 }, "live seqs must strictly increase: \(liveSeqs)")
        let liveBySeq = Dictionary(live.map { (Int($0.seq), $0.text) }, uniquingKeysWith: { first, _ in first })
        for push in acknowledged {
            #expect(liveBySeq[push.seq] == push.payload || syncedBySeq[push.seq] == push.payload,
                "push seq \(push.seq) neither delivered live nor in SYNC")
            if let text = liveBySeq[push.seq] {
                #expect(text == push.payload, "seq \(push.seq) delivered live as \(text), pushed as \(push.payload)")
            }
        }
        let missedLive = acknowledged.filter { liveBySeq[$0.seq] == nil }.map(\.seq)
        #expect(missedLive.isEmpty, "acknowledged while the client was online but not delivered live (found only by SYNC): \(missedLive)")
    }

    @Test("Redis down at AUTH: the new client gets DISCONNECT reconnect true with a positive after_ms, then close")
    func redisDownAtAuth() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let present = try await WireClient.connect(gateway)
        try await present.auth(mid: "here", key: "k")

        gateway.stopRedis()
        let unhealthy = try await eventually(timeout: 5) {
            (try? await gateway.http(HTTP.request("GET", "/healthz")))?.status == 503
        }
        #expect(unhealthy, "/healthz should answer 503 while Redis is down")

        let late = try await WireClient.connect(gateway)
        try late.send(op: Op.auth, seq: 9, text: authBody(mid: "late", key: "k", lastSeq: 0))
        let frames = try await late.readUntilClosed()
        #expect(frames.count == 1, "one DISCONNECT then close: \(frames)")
        let disconnect = try #require(frames.first, "closed without DISCONNECT")
        #expect(disconnect.op == Op.disconnect, "\(disconnect)")
        let body = try #require(disconnect.json, "DISCONNECT body is not JSON: \(disconnect)")
        #expect(body["reconnect"] as? Bool == true, "\(disconnect)")
        #expect((number(body["after_ms"]) ?? 0) > 0, "\(disconnect)")
        #expect((body["reason"] as? String).map { !$0.isEmpty } == true, "\(disconnect)")

        #expect(try await present.heartbeat(seq: 4) == 0, "a client authenticated before the outage stays")
    }

    @Test("Redis stalled (SIGSTOP): a push answers 503 once no reply came for 2 s, never 200; after SIGCONT pushes are stored again")
    func redisStalled() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let redis = try #require(gateway.redis, "the gateway's own redis-server")
        let before = try await gateway.push(storedPushBody(users: ["stall"], payload: "1"))
        #expect(before.status == 200, "\(before)")

        redis.process.signal(SIGSTOP)
        let started = Date()
        let stalled = try await gateway.push(storedPushBody(users: ["stall"], payload: "2"))
        let waited = Date().timeIntervalSince(started)
        redis.process.signal(SIGCONT)
        #expect(stalled.status == 503 && stalled.errorCode == "unavailable", "push while Redis is stopped: \(stalled)")
        #expect(waited >= 1.5 && waited < 6, "answered after \(waited) s: the stall is declared after 2 s without a reply")

        let back = try await eventually(timeout: 10) {
            (try? await gateway.push(storedPushBody(users: ["stall"], payload: "3")))?.status == 200
        }
        #expect(back, "pushes are stored again after SIGCONT")
    }
}
