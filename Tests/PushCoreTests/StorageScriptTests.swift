// The Lua scripts of Sources/PushCore/Storage/Scripts against a real redis-server: loading, store, read, ack.
// Helpers (T, unique, seqs, RedisTestClient calls) are in Support/ScriptTestSupport.swift.
import Testing

@testable import PushCore

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
}
