// Every Lua script of Sources/PushCore/Storage/Scripts against a real redis-server (PUSHGW_TEST_REDIS_URL).
// Time is passed explicitly (now = T), so expiry is tested without sleeping. Each test works on its own uid and
// node ids, so the tests run in parallel; inboxes expire an hour after the run.
import Testing

@testable import PushCore

/// A fixed "now": 2023-11-14T22:13:20Z.
private let T: UInt64 = 1_700_000_000

/// A uid (or node, or idempotency key) no other test or earlier run uses.
private func unique(_ name: String) -> String {
    "test-\(name)-\(UInt64.random(in: 0...UInt64.max))"
}

/// A store result without its element, as most tests compare it (`storeAssignsConsecutiveSeqs` checks the element).
private struct StoreCounts: Equatable {
    var seq: UInt64
    var unread: UInt64
    var published: Int
    var devices: Int
}

extension StoreResult {
    fileprivate var counts: StoreCounts? {
        guard case .stored(let seq, let unread, let published, let devices, _) = self else { return nil }
        return StoreCounts(seq: seq, unread: unread, published: published, devices: devices)
    }

    fileprivate var message: StoredMessage? {
        guard case .stored(_, _, _, _, let message) = self else { return nil }
        return message
    }
}

extension RedisTestClient {
    /// Stores `payload` for `uid` at second `now` (+ `millis`), from node `node`.
    @discardableResult
    fileprivate func store(
        _ uid: String, _ payload: String = "p", op: UInt32 = 1000, now: UInt64 = T, millis: UInt64 = 0,
        ttl: Int = 3600, max: Int = 200, node: String = "node-self", idempotency: (id: String, bodyHash: String)? = nil
    ) throws -> StoreResult {
        try run(
            StoreCall(
                uid: uid, op: op, payload: Array(payload.utf8), nowMillis: now * 1000 + millis, ttl: ttl, inboxMax: max,
                inboxTTL: 3600, node: node, idempotency: idempotency, idemTTL: 3600))
    }

    fileprivate func sync(_ uid: String, after: UInt64, limit: Int = 100, now: UInt64 = T) throws -> SyncResult {
        try run(SyncCall(uid: uid, after: after, limit: limit, nowSeconds: now))
    }

    fileprivate func user(_ uid: String) throws -> UserResult { try run(UserCall(uid: uid)) }

    fileprivate func session(
        _ uid: String, device: String, node: String, platform: String = "ios", now: UInt64 = T, lastSeq: UInt64?,
        limit: Int = 100
    ) throws -> SessionResult {
        try run(
            SessionCall(
                uid: uid, device: device, node: node, platform: platform, nowSeconds: now, ttl: 600,
                lastSeq: lastSeq, limit: limit))
    }
}

/// The seqs of some messages, for compact expectations.
private func seqs(_ messages: [StoredMessage]) -> [UInt64] { messages.map(\.seq) }

@Suite struct StorageScriptTests {
    // MARK: scripts as Redis sees them

    /// The SHA-1 computed in Swift is the one SCRIPT LOAD returns, for every script.
    @Test func scriptSHAMatchesScriptLoad() throws {
        let redis = try RedisTestClient()
        for script in Scripts.all {
            #expect(try redis.command(script.load) == .string(Array(script.sha1.utf8)), "\(script.name)")
        }
    }

    /// After SCRIPT LOAD, EVALSHA with the Swift-computed SHA runs the script; no EVAL needed.
    @Test func evalshaAfterScriptLoad() throws {
        let redis = try RedisTestClient()
        _ = try redis.command(Scripts.user.load)
        let call = UserCall(uid: unique("evalsha"))
        let reply = try redis.command(call.evalsha)
        #expect(try UserCall.decode(reply) == UserResult(seq: 0, unread: 0, read: 0, kept: 0, sessions: []))
    }

    /// An unknown SHA gives NOSCRIPT, recognised as such; EVAL then caches the script and EVALSHA works.
    @Test func noScriptFallsBackToEval() throws {
        let redis = try RedisTestClient()
        let script = Script(name: "probe", source: Array("return {\(T)} -- \(unique("probe"))".utf8))
        let missing = try redis.command(script.evalsha(keys: [], args: []))
        let error = #expect(throws: ScriptError.self) { try AckCall.decode(missing) }
        #expect(error?.isNoScript == true)
        #expect(try redis.command(script.eval(keys: [], args: [])) == .array([.integer(Int64(T))]))
        #expect(try redis.command(script.evalsha(keys: [], args: [])) == .array([.integer(Int64(T))]))
    }

    // MARK: store

    /// Seqs are 1, 2, 3…; each element is encoded as StoredMessage says, binary payload intact.
    @Test func storeAssignsConsecutiveSeqs() throws {
        let redis = try RedisTestClient()
        let uid = unique("seq")
        #expect(try redis.store(uid, "a") .counts == StoreCounts(seq: 1, unread: 1, published: 0, devices: 0))
        #expect(try redis.store(uid, "b") .counts == StoreCounts(seq: 2, unread: 2, published: 0, devices: 0))
        let binary: [UInt8] = Array("x:1:2\n3:".utf8) + [0, 0xFF, 13, 10]
        let result = try redis.run(
            StoreCall(
                uid: uid, op: 4242, payload: binary, nowMillis: T * 1000 + 123, ttl: 60, inboxMax: 200, inboxTTL: 3600,
                node: "n"))
        #expect(result .counts == StoreCounts(seq: 3, unread: 3, published: 0, devices: 0))

        let raw = try redis.command("LRANGE", RedisKeys.inbox(uid), "0", "-1")
        let elements = raw.array?.compactMap(\.bytes) ?? []
        #expect(elements.count == 3)
        #expect(elements.last == Array("3:4242:\(T * 1000 + 123):\(T + 60):".utf8) + binary)
        let expected = StoredMessage(
            seq: 3, op: 4242, timestampMillis: T * 1000 + 123, expiresAt: T + 60, payload: binary)
        #expect(elements.last.flatMap { StoredMessage(encoded: $0) } == expected)
        #expect(try redis.sync(uid, after: 2).messages == [expected])
    }

    /// Seqs past 10^14 are written in full, not in Lua's %.14g exponent form (exact up to 2^53: Lua numbers).
    @Test func storeWritesLargeSeqsAsIntegers() throws {
        let redis = try RedisTestClient()
        let uid = unique("big")
        _ = try redis.command("HSET", RedisKeys.meta(uid), "seq", "1234567890123455")
        _ = try redis.command("EXPIRE", RedisKeys.meta(uid), "3600")
        let result = try redis.store(uid)
        #expect(result.seq == 1_234_567_890_123_456)
        let head = try redis.command("LINDEX", RedisKeys.inbox(uid), "0")
        #expect(head.text?.hasPrefix("1234567890123456:1000:\(T * 1000):\(T + 3600):") == true)
    }

    /// Past the cap the head is trimmed: 250 stored with max 200 keep 51…250, and sync starts at 51.
    @Test func storeTrimsAtTheCap() throws {
        let redis = try RedisTestClient()
        let uid = unique("trim")
        for _ in 1...250 { try redis.store(uid, max: 200) }
        let user = try redis.user(uid)
        #expect(user.seq == 250)
        #expect(user.kept == 200)
        #expect(user.unread == 200)
        #expect(try redis.command("LLEN", RedisKeys.inbox(uid)) == .integer(200))

        let first = try redis.sync(uid, after: 0)
        #expect(first.seq == 250)
        #expect(seqs(first.messages) == Array(51...150))
        // Below the first kept, across the trim boundary: starts at the first kept.
        #expect(seqs(try redis.sync(uid, after: 10).messages) == Array(51...150))
        #expect(seqs(try redis.sync(uid, after: 50, limit: 3).messages) == [51, 52, 53])
        #expect(seqs(try redis.sync(uid, after: 51, limit: 3).messages) == [52, 53, 54])
        #expect(seqs(try redis.sync(uid, after: 150).messages) == Array(151...250))
        #expect(seqs(try redis.sync(uid, after: 249).messages) == [250])
        #expect(try redis.sync(uid, after: 250).messages.isEmpty)
        #expect(try redis.sync(uid, after: 251).messages.isEmpty)
    }

    /// The inbox key expires after inbox.ttl and meta after 4 × inbox.ttl.
    @Test func storeSetsKeyExpiry() throws {
        let redis = try RedisTestClient()
        let uid = unique("expiry")
        try redis.store(uid)
        let inboxTTL = try redis.command("TTL", RedisKeys.inbox(uid)).int ?? -1
        let metaTTL = try redis.command("TTL", RedisKeys.meta(uid)).int ?? -1
        #expect((3590...3600).contains(inboxTTL))
        #expect((4 * 3600 - 10...4 * 3600).contains(metaTTL))
    }

    /// Store publishes `<uid>\n<element>` once to each other node holding a session, none to its own node.
    @Test func storePublishesOncePerOtherNode() throws {
        let redis = try RedisTestClient()
        let subscriber = try RedisTestClient()
        let uid = unique("pub")
        let (me, b, c) = (unique("self"), unique("b"), unique("c"))
        for (device, node) in [("d1", me), ("d2", b), ("d3", b), ("d4", c)] {
            _ = try redis.session(uid, device: device, node: node, lastSeq: nil)
        }
        let channels = [me, b, c].map(RedisKeys.nodeChannel)
        try subscriber.send((["SUBSCRIBE"] + channels).map { Array($0.utf8) })
        for _ in channels { _ = try subscriber.receive() }

        let result = try redis.store(uid, "hello", node: me)
        #expect(result .counts == StoreCounts(seq: 1, unread: 1, published: 2, devices: 4))

        var received: [String: NodeDelivery] = [:]
        for _ in 0..<2 {
            let push = try subscriber.receive().array ?? []
            #expect(push.count == 3 && push[0].text == "message", "\(push)")
            guard push.count == 3, let channel = push[1].text, let payload = push[2].bytes else { continue }
            #expect(received[channel] == nil, "twice on \(channel)")
            received[channel] = NodeDelivery(payload: payload)
        }
        let message = StoredMessage(
            seq: 1, op: 1000, timestampMillis: T * 1000, expiresAt: T + 3600, payload: Array("hello".utf8))
        #expect(
            received == [
                channels[1]: NodeDelivery(uid: uid, message: message),
                channels[2]: NodeDelivery(uid: uid, message: message),
            ])
        // PING in subscribed mode answers after anything already queued: no third message came before it.
        try subscriber.send([Array("PING".utf8)])
        #expect(try subscriber.receive() == .array([.string(Array("pong".utf8)), .string([])]))
    }

    /// Nodes with a long-poll of the user (`pg:{u:<uid>}:polls`) are published to like nodes with a session: once
    /// per node, never to its own, and a field past its time is dropped instead.
    @Test func storePublishesToNodesWithLongPolls() throws {
        let redis = try RedisTestClient()
        let subscriber = try RedisTestClient()
        let uid = unique("polls")
        let (me, b, c, stale) = (unique("self"), unique("b"), unique("c"), unique("stale"))
        _ = try redis.session(uid, device: "d1", node: b, lastSeq: nil)
        _ = try redis.command(
            "HSET", RedisKeys.polls(uid), me, "\(T + 60)", b, "\(T + 60)", c, "\(T + 60)", stale, "\(T - 1)")
        _ = try redis.command("EXPIRE", RedisKeys.polls(uid), "3600")
        let channels = [me, b, c, stale].map(RedisKeys.nodeChannel)
        try subscriber.send((["SUBSCRIBE"] + channels).map { Array($0.utf8) })
        for _ in channels { _ = try subscriber.receive() }

        #expect(try redis.store(uid, "hello", node: me) .counts == StoreCounts(seq: 1, unread: 1, published: 2, devices: 1))
        var channelsSent: [String] = []
        for _ in 0..<2 {
            let push = try subscriber.receive().array ?? []
            if push.count == 3, let channel = push[1].text { channelsSent.append(channel) }
        }
        #expect(channelsSent.sorted() == [channels[1], channels[2]].sorted())
        try subscriber.send([Array("PING".utf8)])
        #expect(try subscriber.receive() == .array([.string(Array("pong".utf8)), .string([])]))
        let fields = try redis.command("HKEYS", RedisKeys.polls(uid)).array?.compactMap(\.text) ?? []
        #expect(fields.sorted() == [me, b, c].sorted())
    }

    /// Bad arguments come back as error replies naming the argument, thrown as server errors.
    @Test func badArgumentsAreErrorReplies() throws {
        let redis = try RedisTestClient()
        let uid = unique("bad")
        let call = StoreCall(
            uid: uid, op: 1000, payload: [], nowMillis: T * 1000, ttl: 60, inboxMax: 0, inboxTTL: 60, node: "n")
        let error = #expect(throws: ScriptError.self) { try redis.run(call) }
        #expect(error?.isServerError == true)
        #expect(error?.message.contains("inbox max") == true)

        var sync = SyncCall(uid: uid, after: 0, limit: 1, nowSeconds: T).evalsha
        sync[sync.count - 3] = Array("abc".utf8)
        let syncError = #expect(throws: ScriptError.self) { try SyncCall.decode(try redis.command(sync)) }
        #expect(syncError?.message.contains("after") == true)
    }

    // MARK: unread, read, ack

    /// Unread counts stores, never above what is kept; read moves forward only and never makes unread negative.
    @Test func unreadAndRead() throws {
        let redis = try RedisTestClient()
        let uid = unique("unread")
        for _ in 1...3 { try redis.store(uid, max: 5) }
        #expect(try redis.user(uid).unread == 3)
        for _ in 4...8 { try redis.store(uid, max: 5) }
        #expect(try redis.user(uid).unread == 5)  // capped at the 5 kept

        #expect(try redis.run(ReadCall(uid: uid, seq: 6)) == ReadResult(unread: 2, read: 6))
        #expect(try redis.run(ReadCall(uid: uid, seq: 3)) == ReadResult(unread: 2, read: 6))  // never backwards
        #expect(try redis.run(ReadCall(uid: uid, seq: 100)) == ReadResult(unread: 0, read: 8))  // not past seq
        #expect(try redis.run(ReadCall(uid: uid, seq: 100)) == ReadResult(unread: 0, read: 8))
        #expect(try redis.store(uid, max: 5) .counts == StoreCounts(seq: 9, unread: 1, published: 0, devices: 0))
        let user = try redis.user(uid)
        #expect((user.seq, user.unread, user.read) == (9, 1, 8))
    }

    /// READ for a user with nothing stored answers zeros and creates no meta hash (it would have no expiry).
    @Test func readOfUnknownUserWritesNothing() throws {
        let redis = try RedisTestClient()
        let uid = unique("noread")
        #expect(try redis.run(ReadCall(uid: uid, seq: 5)) == ReadResult(unread: 0, read: 0))
        #expect(try redis.run(AckCall(uid: uid, device: "d", seq: 5)) == 0)
        #expect(try redis.command("EXISTS", RedisKeys.meta(uid)) == .integer(0))
    }

    /// A device's ACK cursor is max(current, min(seq, last seq)).
    @Test func ackMovesForwardOnly() throws {
        let redis = try RedisTestClient()
        let uid = unique("ack")
        for _ in 1...5 { try redis.store(uid) }
        #expect(try redis.run(AckCall(uid: uid, device: "d1", seq: 3)) == 3)
        #expect(try redis.run(AckCall(uid: uid, device: "d1", seq: 2)) == 3)
        #expect(try redis.run(AckCall(uid: uid, device: "d1", seq: 100)) == 5)
        #expect(try redis.run(AckCall(uid: uid, device: "d2", seq: 1)) == 1)
        let field = RedisKeys.deviceCursorField("d1")
        #expect(try redis.command("HGET", RedisKeys.meta(uid), field).int == 5)
    }

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
    @Test func idempotency() throws {
        let redis = try RedisTestClient()
        let (uid, other, id) = (unique("idem"), unique("idem-other"), unique("key"))
        let hash = bodyHash(Array("{\"op\":1000}".utf8))
        #expect(try redis.store(uid, idempotency: (id, hash)) .counts == StoreCounts(seq: 1, unread: 1, published: 0, devices: 0))
        #expect(try redis.store(uid, idempotency: (id, hash)) == .duplicate(seq: 1, unread: 1))
        #expect(try redis.store(uid, idempotency: (id, bodyHash(Array("other".utf8)))) == .conflict)
        #expect(try redis.store(other, idempotency: (id, hash)) .counts == StoreCounts(seq: 1, unread: 1, published: 0, devices: 0))
        #expect(try redis.store(uid) .counts == StoreCounts(seq: 2, unread: 2, published: 0, devices: 0))
        #expect(try redis.store(uid, idempotency: (id, hash)) == .duplicate(seq: 1, unread: 2))
        #expect(try redis.user(uid).kept == 2)
        let ttl = try redis.command("TTL", RedisKeys.idempotency(id)).int ?? -1
        #expect((3590...3600).contains(ttl))
    }

    /// A key the gateway generated (`freshID`) writes its record without looking one up; a retry with that key
    /// (no longer fresh: the backend sends it back) finds it and stores nothing again.
    @Test func generatedIdempotencyKey() throws {
        let redis = try RedisTestClient()
        let (uid, id) = (unique("gen"), unique("gen-key"))
        let call = { (fresh: Bool) in
            StoreCall(
                uid: uid, op: 1000, payload: Array("p".utf8), nowMillis: T * 1000, ttl: 3600, inboxMax: 200,
                inboxTTL: 3600, node: "n", idempotency: (id, "hash"), idemTTL: 300, freshID: fresh)
        }
        #expect(try redis.run(call(true)) .counts == StoreCounts(seq: 1, unread: 1, published: 0, devices: 0))
        #expect(try redis.run(call(false)) == .duplicate(seq: 1, unread: 1))
        #expect(try redis.user(uid).kept == 1)
        let ttl = try redis.command("TTL", RedisKeys.idempotency(id)).int ?? -1
        #expect((290...300).contains(ttl))
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
        let first = try redis.store("h", idempotency: (id, "hash"))
        guard case .stored(let seq, _, _, _, _) = first else {
            Issue.record("expected stored, got \(first)")
            return
        }
        #expect(try redis.store("h", idempotency: (id, "hash")).seq == seq)
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
