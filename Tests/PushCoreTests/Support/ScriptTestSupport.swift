// Shared by the tests of the Lua scripts of Sources/PushCore/Storage/Scripts against a real redis-server
// (PUSHGW_TEST_REDIS_URL).
// Time is passed explicitly (now = T), so expiry is tested without sleeping. Each test works on its own uid and
// node ids, so the tests run in parallel; inboxes expire an hour after the run.
import Testing

@testable import PushCore

/// A fixed "now": 2023-11-14T22:13:20Z.
let T: UInt64 = 1_700_000_000

/// A uid (or node, or idempotency key) no other test or earlier run uses.
func unique(_ name: String) -> String {
    "test-\(name)-\(UInt64.random(in: 0...UInt64.max))"
}

extension RedisTestClient {
    /// Stores `payload` for `uid` at second `now` (+ `millis`), from node `node`.
    @discardableResult
    func store(
        _ uid: String, _ payload: String = "p", op: UInt32 = 1000, now: UInt64 = T, millis: UInt64 = 0,
        ttl: Int = 3600, max: Int = 200, node: String = "node-self", idempotency: Idempotency? = nil
    ) throws -> StoreResult {
        try run(
            StoreCall(
                uid: uid, op: op, payload: Array(payload.utf8), nowMillis: now * 1000 + millis, ttl: ttl, inboxMax: max,
                inboxTTL: 3600, node: node, idempotency: idempotency))
    }

    func sync(_ uid: String, after: UInt64, limit: Int = 100, now: UInt64 = T) throws -> SyncResult {
        try run(SyncCall(uid: uid, after: after, limit: limit, nowSeconds: now))
    }

    func user(_ uid: String) throws -> UserResult { try run(UserCall(uid: uid)) }

    func session(
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
func seqs(_ messages: [StoredMessage]) -> [UInt64] { messages.map(\.seq) }

/// A store result without its element, as most tests compare it (`storeAssignsConsecutiveSeqs` checks the element).
struct StoreCounts: Equatable {
    var seq: UInt64
    var unread: UInt64
    var published: Int
    var devices: Int
}

extension StoreResult {
    var counts: StoreCounts? {
        guard case .stored(let seq, let unread, let published, let devices, _) = self else { return nil }
        return StoreCounts(seq: seq, unread: unread, published: published, devices: devices)
    }

    var message: StoredMessage? {
        guard case .stored(_, _, _, _, let message) = self else { return nil }
        return message
    }
}
