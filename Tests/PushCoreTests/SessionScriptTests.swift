// The sync, idempotency, route and session scripts against a real redis-server; helpers in
// Support/ScriptTestSupport.swift.
import Testing

@testable import PushCore

@Suite struct SessionScriptTests {
    // MARK: sync

    /// Ranges of a small inbox: from the start, the middle, a limit, at and beyond the last seq, limit 0.
    @Test func syncRanges() throws {
        let redis = try RedisTestClient()
        let uid = unique("sync")
        #expect(try redis.sync(uid, after: 0) == SyncResult(seq: 0, messages: []))
        for i in 1...10 { try redis.store(uid, "m\(i)") }
        let all = try redis.sync(uid, after: 0)
        #expect(all.seq == 10)
        #expect(seqs(all.messages) == Array(1...10))
        #expect(all.messages.map { String(decoding: $0.payload, as: UTF8.self) } == (1...10).map { "m\($0)" })
        #expect(seqs(try redis.sync(uid, after: 4).messages) == Array(5...10))
        #expect(seqs(try redis.sync(uid, after: 4, limit: 3).messages) == [5, 6, 7])
        #expect(try redis.sync(uid, after: 10) == SyncResult(seq: 10, messages: []))
        #expect(try redis.sync(uid, after: 11).messages.isEmpty)
        #expect(try redis.sync(uid, after: 0, limit: 0).messages.isEmpty)
    }

    /// Expired messages are never returned, wherever they are; a limit still counts returned messages only.
    @Test func syncSkipsExpired() throws {
        let redis = try RedisTestClient()
        let uid = unique("expired")
        try redis.store(uid, ttl: 1)  // 1: expires at T+1
        try redis.store(uid, ttl: 1000)  // 2
        try redis.store(uid, ttl: 1)  // 3
        try redis.store(uid, ttl: 0)  // 4: never expires
        try redis.store(uid, ttl: 1000)  // 5

        #expect(seqs(try redis.sync(uid, after: 0, now: T).messages) == [1, 2, 3, 4, 5])
        #expect(seqs(try redis.sync(uid, after: 0, now: T + 1).messages) == [2, 4, 5])  // expire_at <= now
        #expect(seqs(try redis.sync(uid, after: 0, limit: 2, now: T + 5).messages) == [2, 4])
        #expect(seqs(try redis.sync(uid, after: 2, limit: 1, now: T + 5).messages) == [4])
        #expect(seqs(try redis.sync(uid, after: 0, now: T + 5000).messages) == [4])
        // sync is read-only: nothing was popped.
        #expect(try redis.user(uid).kept == 5)
    }

    /// A store pops expired messages from the head (up to the first unexpired one) and caps unread to what is kept.
    @Test func storePopsExpiredHead() throws {
        let redis = try RedisTestClient()
        let uid = unique("pop")
        try redis.store(uid, ttl: 1)  // 1
        try redis.store(uid, ttl: 1000)  // 2
        try redis.store(uid, ttl: 1)  // 3
        try redis.store(uid, ttl: 0)  // 4
        #expect(try redis.store(uid, now: T + 5) .counts == StoreCounts(seq: 5, unread: 4, published: 0, devices: 0))
        #expect(try redis.user(uid).kept == 4)  // 1 popped; 2 is alive and stops the popping; unread capped to 4
        #expect(try redis.store(uid, now: T + 2000) .counts == StoreCounts(seq: 6, unread: 3, published: 0, devices: 0))
        #expect(try redis.user(uid).kept == 3)  // 2 and 3 popped; 4 never expires and stops the popping
        #expect(seqs(try redis.sync(uid, after: 0, now: T + 2000).messages) == [4, 5, 6])
    }

    // MARK: idempotency

    /// Same key and body: the first seq again, nothing stored twice. Another body: conflict. Another user: stored.
    /// The record is in the user's slot, found in the next generation too, and gone after that.
    @Test func idempotency() throws {
        let redis = try RedisTestClient()
        let (uid, other, key) = (unique("idem"), unique("idem-other"), unique("key"))
        let id = Idempotency(id: key, bodyHash: bodyHash(Array("{\"op\":1000}".utf8)))
        var otherBody = id
        otherBody.bodyHash = bodyHash(Array("other".utf8))
        #expect(try redis.store(uid, idempotency: id) .counts == StoreCounts(seq: 1, unread: 1, published: 0, devices: 0))
        #expect(try redis.store(uid, idempotency: id) == .duplicate(seq: 1, unread: 1))
        #expect(try redis.store(uid, idempotency: otherBody) == .conflict)
        #expect(try redis.store(other, idempotency: id) .counts == StoreCounts(seq: 1, unread: 1, published: 0, devices: 0))
        #expect(try redis.store(uid) .counts == StoreCounts(seq: 2, unread: 2, published: 0, devices: 0))
        #expect(try redis.store(uid, idempotency: id) == .duplicate(seq: 1, unread: 2))
        #expect(try redis.user(uid).kept == 2)
        // Written in the generation of T, which expires at the end of the next one: TTL counted from T.
        let day = UInt64(Idempotency.backendTTL)
        let generation = T / day
        let record = RedisKeys.idempotency(uid, ttl: Idempotency.backendTTL, generation: generation)
        let ttl = try redis.command("TTL", record).int ?? -1
        #expect(ttl == Int((generation + 2) * day - T))
        // A day later (the next generation) the key is still known; two days later it is not.
        let nextDay = (generation + 1) * day + 10
        #expect(try redis.store(uid, now: nextDay, idempotency: id) == .duplicate(seq: 1, unread: 2))
        #expect(try redis.store(uid, now: nextDay + day, idempotency: id).seq == 3)
    }

    /// A push sent without a key writes no record; a backend's retry with the key the gateway generated for it
    /// (its time) finds the stored message in the inbox and stores nothing again. Another payload at that time, or
    /// the same payload at another time, is not the same push.
    @Test func generatedIdempotencyKey() throws {
        let redis = try RedisTestClient()
        let uid = unique("gen")
        let millis: UInt64 = 250
        #expect(try redis.store(uid, "p", millis: millis) .counts == StoreCounts(seq: 1, unread: 1, published: 0, devices: 0))
        try redis.store(uid, "q", millis: millis + 1)
        let key = Idempotency.generatedID(nowMillis: T * 1000 + millis, random: 7)
        let retry = Idempotency(id: key, bodyHash: "hash")
        #expect(try redis.store(uid, "p", now: T + 1, idempotency: retry) == .duplicate(seq: 1, unread: 2))
        #expect(try redis.user(uid).kept == 2)
        #expect(try redis.store(uid, "other", now: T + 1, idempotency: retry).seq == 3)
        let elsewhen = Idempotency(id: Idempotency.generatedID(nowMillis: T * 1000 + 999, random: 7), bodyHash: "h")
        #expect(try redis.store(uid, "p", now: T + 1, idempotency: elsewhen).seq == 4)
        // Records only for the two pushes stored with a key: none for the one sent without.
        let backend = RedisKeys.idempotency(uid, ttl: Idempotency.backendTTL, generation: T / 86_400)
        #expect(try redis.command("HLEN", backend) == .integer(2))
    }

    /// Several AUTHs in one call: each device gets its own entry, in order; one whose keys Redis refuses (a session
    /// key of the wrong type) fails alone.
    @Test func sessionBatch() throws {
        let redis = try RedisTestClient()
        let (a, b, bad) = (unique("sa"), unique("sb"), unique("sbad"))
        try redis.store(a)
        try redis.store(a)
        _ = try redis.command("SET", RedisKeys.sessions(bad), "x")
        func call(_ uid: String, _ device: String) -> SessionCall {
            SessionCall(
                uid: uid, device: device, node: "n1", platform: "ios", nowSeconds: T, ttl: 600, lastSeq: 0, limit: 100)
        }
        let entries = try redis.run(SessionBatchCall([call(a, "d1"), call(bad, "d"), call(b, "d2")]))
        #expect(entries.count == 3)
        #expect((try? entries[0].get())?.messages.map(\.seq) == [1, 2])
        #expect(throws: ScriptError.self) { try entries[1].get() }
        #expect((try? entries[2].get())?.seq == 0)
        #expect(try redis.command("HEXISTS", RedisKeys.sessions(b), "d2") == .integer(1))
    }

    /// route.lua publishes a transient push once to each other node with a matching session, none to its own.
    @Test func routePublishesToOtherNodes() throws {
        let redis = try RedisTestClient()
        let subscriber = try RedisTestClient()
        let uid = unique("route")
        let (me, b) = (unique("self"), unique("b"))
        for (device, node) in [("d1", me), ("d2", b), ("d3", b)] {
            _ = try redis.session(uid, device: device, node: node, lastSeq: nil)
        }
        try subscriber.send((["SUBSCRIBE", RedisKeys.nodeChannel(b)]).map { Array($0.utf8) })
        _ = try subscriber.receive()
        let message = NodeMessage.transient(user: uid, device: nil, op: 1000, payload: Array("hi".utf8))
        #expect(try redis.run(RouteCall(uid: uid, node: me, message: message)) == RouteResult(devices: 3, published: 1))
        guard case .array(let parts) = try subscriber.receive(), parts.count == 3, case .string(let payload) = parts[2] else {
            Issue.record("no message on the other node's channel")
            return
        }
        #expect(NodeMessage(payload: payload) == message)
        // One device only: its own node holds it, nothing is published.
        #expect(try redis.run(RouteCall(uid: uid, node: me, message: message, device: "d1")) == RouteResult(devices: 1, published: 0))
    }

    /// session.lua answers whether another node holds a session of the user, and tells each such node once
    /// (`presence`) that this one holds one now; a session on its own node alone is not remote.
    @Test func sessionTellsOtherNodes() throws {
        let redis = try RedisTestClient()
        let subscriber = try RedisTestClient()
        let uid = unique("presence")
        let (a, b) = (unique("a"), unique("b"))
        try subscriber.send((["SUBSCRIBE", RedisKeys.nodeChannel(a)]).map { Array($0.utf8) })
        _ = try subscriber.receive()
        #expect(try redis.session(uid, device: "d1", node: a, lastSeq: nil).remote == false)
        #expect(try redis.session(uid, device: "d2", node: a, lastSeq: nil).remote == false)
        #expect(try redis.session(uid, device: "d3", node: b, lastSeq: nil).remote == true)
        guard case .array(let parts) = try subscriber.receive(), parts.count == 3, case .string(let payload) = parts[2] else {
            Issue.record("node a was not told of the session on node b")
            return
        }
        #expect(NodeMessage(payload: payload) == .presence(user: uid))
        // Node a learns of b from its own AUTH's answer too.
        #expect(try redis.session(uid, device: "d4", node: a, lastSeq: nil).remote == true)
    }

    /// A user whose uid is `h` (the hash-body field's name) still gets a proper seq and a proper duplicate.
    @Test func idempotencyForUserNamedH() throws {
        let redis = try RedisTestClient()
        let id = unique("key-h")
        let first = try redis.store("h", idempotency: Idempotency(id: id, bodyHash: "hash"))
        guard case .stored(let seq, _, _, _, _) = first else {
            Issue.record("expected stored, got \(first)")
            return
        }
        #expect(try redis.store("h", idempotency: Idempotency(id: id, bodyHash: "hash")).seq == seq)
    }

    // MARK: sessions

    /// AUTH with last_seq registers the session and returns the messages after it, up to the limit.
    @Test func sessionReturnsMissedMessages() throws {
        let redis = try RedisTestClient()
        let uid = unique("session")
        for _ in 1...5 { try redis.store(uid) }
        _ = try redis.run(ReadCall(uid: uid, seq: 1))

        let result = try redis.session(uid, device: "phone", node: "n1", lastSeq: 2)
        #expect((result.seq, result.unread, result.read, result.firstKept) == (5, 4, 1, 1))
        #expect(seqs(result.messages) == [3, 4, 5])
        #expect(seqs(try redis.session(uid, device: "phone", node: "n1", lastSeq: 2, limit: 2).messages) == [3, 4])
        #expect(try redis.session(uid, device: "phone", node: "n1", lastSeq: nil).messages.isEmpty)
        #expect(try redis.session(uid, device: "phone", node: "n1", lastSeq: 5).messages.isEmpty)
        #expect(seqs(try redis.session(uid, device: "phone", node: "n1", lastSeq: 0).messages) == [1, 2, 3, 4, 5])

        let user = try redis.user(uid)
        #expect(user.sessions == [DeviceSession(key: "phone", node: "n1", platform: "ios", since: T)])
        let ttl = try redis.command("TTL", RedisKeys.sessions(uid)).int ?? -1
        #expect((590...600).contains(ttl))
    }

    /// first_kept tells a client with an old last_seq that it lost messages to the cap; empty inbox gives 0.
    @Test func sessionFirstKept() throws {
        let redis = try RedisTestClient()
        let uid = unique("firstkept")
        #expect(
            try redis.session(uid, device: "d", node: "n", lastSeq: 0)
                == SessionResult(seq: 0, unread: 0, read: 0, firstKept: 0, messages: []))
        for _ in 1...8 { try redis.store(uid, max: 5) }
        let result = try redis.session(uid, device: "d", node: "n", lastSeq: 1)
        #expect(result.firstKept == 4)
        #expect(seqs(result.messages) == [4, 5, 6, 7, 8])
        // Expired heads are popped first, so first_kept names a message the client can still get.
        #expect(
            try redis.session(uid, device: "d", node: "n", now: T + 4000, lastSeq: 0)
                == SessionResult(seq: 8, unread: 0, read: 0, firstKept: 0, messages: []))
    }

    /// A close removes the session only while it still names this node: a reconnect elsewhere wins.
    @Test func leaveRemovesOnlyItsOwnNodesSession() throws {
        let redis = try RedisTestClient()
        let uid = unique("leave")
        _ = try redis.session(uid, device: "d1", node: "nodeA", lastSeq: nil)
        _ = try redis.session(uid, device: "d1", node: "nodeB", platform: "android", now: T + 1, lastSeq: nil)
        _ = try redis.session(uid, device: "d2", node: "nodeAB", lastSeq: nil)
        #expect(try redis.run(LeaveCall(uid: uid, device: "d1", node: "nodeA")) == false)
        #expect(try redis.run(LeaveCall(uid: uid, device: "d2", node: "nodeA")) == false)  // a prefix is not a match
        let sessions = try redis.user(uid).sessions.sorted { $0.key < $1.key }
        #expect(
            sessions == [
                DeviceSession(key: "d1", node: "nodeB", platform: "android", since: T + 1),
                DeviceSession(key: "d2", node: "nodeAB", platform: "ios", since: T),
            ])
        #expect(try redis.run(LeaveCall(uid: uid, device: "d1", node: "nodeB")) == true)
        #expect(try redis.run(LeaveCall(uid: uid, device: "d1", node: "nodeB")) == false)
        #expect(try redis.user(uid).sessions.map(\.key) == ["d2"])
    }
}
