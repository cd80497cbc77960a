// store.lua's skips (expiries refreshed when due, the expired-head check skipped while nothing can have expired,
// unread derived) and batches of several messages or ACKs in one call, against a real redis-server.
// Helpers (T, unique, RedisTestClient calls) are in Support/ScriptTestSupport.swift.
import Testing

@testable import PushCore

@Suite struct StoreBatchScriptTests {
    /// A meta field; `xt`, `hx`, `xl` and `xs` are the parts of `x` (`<xt>:<hx>:<xl>:<xs>`, see store.lua).
    private func meta(_ redis: RedisTestClient, _ uid: String, _ field: String) throws -> Int64? {
        let parts = ["xt", "hx", "xl", "xs"]
        guard let part = parts.firstIndex(of: field) else { return try redis.command("HGET", RedisKeys.meta(uid), field).int }
        let x = try redis.command("HGET", RedisKeys.meta(uid), "x").text ?? ""
        let values = x.split(separator: ":", omittingEmptySubsequences: false)
        return values.count == 4 ? Int64(values[part]) : nil
    }

    private func call(_ uid: String, _ payload: String = "p", now: UInt64 = T, ttl: Int = 3600) -> StoreCall {
        StoreCall(
            uid: uid, op: 1000, payload: Array(payload.utf8), nowMillis: now * 1000, ttl: ttl, inboxMax: 200,
            inboxTTL: 3600, node: "node-self")
    }

    // MARK: skips

    /// A message with a ttl still expires and is popped, though the head is only looked at once something can
    /// have expired; the lower bound then moves to the new head's expire_at.
    @Test func expiredHeadIsPoppedWhenDue() throws {
        let redis = try RedisTestClient()
        let uid = unique("headexp")
        try redis.store(uid, "a", now: T, ttl: 10)
        #expect(try meta(redis, uid, "hx") == Int64(T + 10))
        try redis.store(uid, "b", now: T + 5, ttl: 3600)
        #expect(try redis.user(uid).kept == 2)
        #expect(try meta(redis, uid, "hx") == Int64(T + 10))  // the bound only goes down on append
        try redis.store(uid, "c", now: T + 11, ttl: 3600)
        #expect(try redis.user(uid).kept == 2)  // "a" popped
        #expect(try meta(redis, uid, "hx") == Int64(T + 3605))
        #expect(seqs(try redis.sync(uid, after: 0, now: T + 11).messages) == [2, 3])
        #expect(try redis.user(uid).unread == 2)
    }

    /// Messages of mixed ttls: a short one behind a long one is skipped by sync when expired and popped once it is
    /// at the head; the head is checked on every store meanwhile.
    @Test func mixedTTLsStillExpire() throws {
        let redis = try RedisTestClient()
        let uid = unique("mixed")
        try redis.store(uid, "long", now: T, ttl: 3600)
        try redis.store(uid, "short", now: T, ttl: 10)
        try redis.store(uid, "short2", now: T, ttl: 10)
        #expect(try meta(redis, uid, "hx") == Int64(T + 10))
        try redis.store(uid, "later", now: T + 20, ttl: 3600)
        #expect(seqs(try redis.sync(uid, after: 0, now: T + 20).messages) == [1, 4])
        #expect(try redis.user(uid).kept == 4)  // not at the head: kept until it is
        #expect(try meta(redis, uid, "hx") == Int64(T + 10))  // not raised: the inbox is not ordered
        // With the cap at 3, "long" is trimmed: the two expired ones are at the head and popped.
        let trimmed = try redis.store(uid, "last", now: T + 21, ttl: 3600, max: 3)
        #expect(trimmed.seq == 5)
        #expect(try redis.user(uid).kept == 2)
        #expect(seqs(try redis.sync(uid, after: 0, now: T + 21).messages) == [4, 5])
        #expect(try meta(redis, uid, "hx") == Int64(T + 20 + 3600))  // ordered again from the head
    }

    /// Messages that never expire: no bound, nothing checked; one with a ttl lowers the bound to its expire_at.
    @Test func neverExpiringMessages() throws {
        let redis = try RedisTestClient()
        let uid = unique("never")
        try redis.store(uid, now: T, ttl: 0)
        try redis.store(uid, now: T + 1, ttl: 0)
        #expect(try meta(redis, uid, "hx") == 0)
        try redis.store(uid, now: T + 2, ttl: 5)
        #expect(try meta(redis, uid, "hx") == Int64(T + 7))
        try redis.store(uid, now: T + 100, ttl: 0)
        // 3 is expired but behind two that never expire: skipped by sync, kept.
        #expect(seqs(try redis.sync(uid, after: 0, now: T + 100).messages) == [1, 2, 4])
        #expect(try redis.user(uid).kept == 4)
    }

    /// Unread is min(seq − read, kept), written with seq: right after reads, trims at the cap, and stores.
    @Test func unreadAfterReadsAndTrims() throws {
        let redis = try RedisTestClient()
        let uid = unique("unreadtrim")
        for _ in 1...8 { try redis.store(uid, max: 5) }
        #expect(try meta(redis, uid, "unread") == 5)
        #expect(try redis.run(ReadCall(uid: uid, seq: 6)) == ReadResult(unread: 2, read: 6))
        #expect(try redis.store(uid, max: 5).counts?.unread == 3)
        for _ in 10...19 { try redis.store(uid, max: 5) }
        #expect(try meta(redis, uid, "unread") == 5)
        #expect(try redis.run(ReadCall(uid: uid, seq: 18)) == ReadResult(unread: 1, read: 18))
        #expect(try redis.store(uid, max: 5).counts?.unread == 2)
        let user = try redis.user(uid)
        #expect((user.seq, user.unread, user.read, user.kept) == (20, 2, 18, 5))
        #expect(try meta(redis, uid, "unread") == 2)
    }

    /// EXPIRE is set on a new inbox and refreshed once more than min(60, ttl / 10) s passed, not on every store.
    @Test func expiriesRefreshedWhenDue() throws {
        let redis = try RedisTestClient()
        let uid = unique("refresh")
        try redis.store(uid, now: T)
        #expect(try meta(redis, uid, "xt") == Int64(T))
        try redis.store(uid, now: T + 60)
        #expect(try meta(redis, uid, "xt") == Int64(T))
        try redis.store(uid, now: T + 61)
        #expect(try meta(redis, uid, "xt") == Int64(T + 61))
        // The inbox gone (expired, or emptied): the next store creates it with its expiry at once.
        _ = try redis.command("DEL", RedisKeys.inbox(uid))
        try redis.store(uid, now: T + 62)
        #expect(try meta(redis, uid, "xt") == Int64(T + 62))
        #expect((3590...3600).contains(try redis.command("TTL", RedisKeys.inbox(uid)).int ?? -1))
        // Meta without the field (written by an older gateway): refreshed.
        _ = try redis.command("HDEL", RedisKeys.meta(uid), "x")
        _ = try redis.command("PERSIST", RedisKeys.inbox(uid))
        try redis.store(uid, now: T + 63)
        #expect((3590...3600).contains(try redis.command("TTL", RedisKeys.inbox(uid)).int ?? -1))
    }

    /// AUTH pops expired heads once the bound says something can have expired, and raises the bound after.
    @Test func sessionPopsExpiredHeadsWhenDue() throws {
        let redis = try RedisTestClient()
        let uid = unique("sessexp")
        try redis.store(uid, "a", now: T, ttl: 10)
        try redis.store(uid, "b", now: T, ttl: 3600)
        let early = try redis.session(uid, device: "d", node: "n", now: T + 5, lastSeq: 0)
        #expect((early.firstKept, seqs(early.messages)) == (1, [1, 2]))
        let late = try redis.session(uid, device: "d", node: "n", now: T + 20, lastSeq: 0)
        #expect((late.firstKept, seqs(late.messages), late.unread) == (2, [2], 1))
        #expect(try redis.user(uid).kept == 1)
        #expect(try meta(redis, uid, "hx") == Int64(T + 3600))
    }

    // MARK: batches

    /// N messages in one call: in order, consecutive seqs for one user, one entry each.
    @Test func batchStoresInOrder() throws {
        let redis = try RedisTestClient()
        let (a, b) = (unique("ba"), unique("bb"))
        let entries = try redis.run(StoreBatchCall([call(a, "1"), call(b, "x"), call(a, "2"), call(a, "3")]))
        let results = try entries.map { try $0.get() }
        #expect(results.map(\.seq) == [1, 1, 2, 3])
        #expect(results.map { $0.counts?.unread } == [1, 1, 2, 3])
        #expect(results.map { $0.message.map { String(decoding: $0.payload, as: UTF8.self) } } == ["1", "x", "2", "3"])
        #expect(try redis.sync(a, after: 0).messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["1", "2", "3"])
        #expect(try redis.user(b).seq == 1)
    }

    /// A message whose keys Redis refuses fails alone; the others of the call are stored.
    @Test func batchEntryFailsAlone() throws {
        let redis = try RedisTestClient()
        let (good, bad) = (unique("good"), unique("bad"))
        _ = try redis.command("SET", RedisKeys.inbox(bad), "not a list")
        _ = try redis.command("EXPIRE", RedisKeys.inbox(bad), "3600")
        let entries = try redis.run(StoreBatchCall([call(good), call(bad), call(good)]))
        #expect(entries.count == 3)
        #expect((try? entries[0].get())?.seq == 1)
        let error = #expect(throws: ScriptError.self) { try entries[1].get() }
        #expect(error?.message.contains("WRONGTYPE") == true)
        #expect((try? entries[2].get())?.seq == 2)
    }

    /// A bad argument of any message is an error for the whole call, and nothing is stored.
    @Test func batchBadArgumentStoresNothing() throws {
        let redis = try RedisTestClient()
        let uid = unique("badbatch")
        var bad = call(uid)
        bad.idempotency = Idempotency(id: "x", bodyHash: "h")
        var command = StoreBatchCall([call(uid), bad]).evalsha
        command[command.count - 5] = Array("0".utf8)  // the second message's idempotency ttl class (then 2 notify fields)
        let reply = try redis.command(command)
        #expect(throws: ScriptError.self) { try StoreBatchCall.decode(reply) }
        #expect(try redis.command("EXISTS", RedisKeys.inbox(uid)) == .integer(0))
    }

    /// One push to several users writes its idempotency record for each; a retry of the same batch stores nothing again,
    /// and another body with the same id in the same call conflicts.
    @Test func batchIdempotency() throws {
        let redis = try RedisTestClient()
        let (a, b, id) = (unique("ia"), unique("ib"), unique("id"))
        func idem(_ uid: String, _ hash: String = "h1") -> StoreCall {
            var call = call(uid)
            call.idempotency = Idempotency(id: id, bodyHash: hash)
            return call
        }
        let first = try redis.run(StoreBatchCall([idem(a), idem(b)])).map { try $0.get() }
        #expect(first.map(\.seq) == [1, 1])
        // Each user's record in the user's own slot.
        for uid in [a, b] {
            let record = RedisKeys.idempotency(uid, ttl: Idempotency.backendTTL, generation: T / 86_400)
            #expect(try redis.command("HGET", record, id) == .string(Array("1:h1".utf8)))
        }
        let again = try redis.run(StoreBatchCall([idem(a), idem(b), idem(a, "h2")])).map { try $0.get() }
        #expect(again == [.duplicate(seq: 1, unread: 1), .duplicate(seq: 1, unread: 1), .conflict])
        #expect(try redis.user(a).seq == 1)
    }

    /// N ACKs in one call, a user's cursors each moved, in order.
    @Test func batchAcks() throws {
        let redis = try RedisTestClient()
        let (a, b) = (unique("aa"), unique("ab"))
        for _ in 1...5 { try redis.store(a) }
        try redis.store(b)
        let acks = [
            AckCall(uid: a, device: "d1", seq: 3), AckCall(uid: b, device: "d1", seq: 9),
            AckCall(uid: a, device: "d2", seq: 4), AckCall(uid: a, device: "d1", seq: 2),
        ]
        let cursors = try redis.run(AckBatchCall(acks)).map { try $0.get() }
        #expect(cursors == [3, 1, 4, 3])
        #expect(try meta(redis, a, RedisKeys.deviceCursorField("d1")) == 3)
    }
}
