/// A stored push's idempotency key (SPEC §3 `id`) and where `store.lua` keeps and looks up its records.
///
/// A backend's key: records live under each user's tag (SPEC §9: one slot per script), one hash per generation
/// (``RedisKeys/idempotency(_:ttl:generation:)``): a generation lasts ``backendTTL``, a record is written into the
/// current one and looked up in the current and the previous one, so it is remembered between one and two days.
/// A push thus adds a field to a hash that usually exists already, not a key with an expiry of its own.
///
/// A key the gateway generates for a push sent without one (so that a 503 whose outcome is unknown can be retried
/// exactly once) writes no record at all: it is the push's timestamp (the `ts` of the element `store.lua` stores,
/// in milliseconds) and a random part. A retry with it looks in the user's inbox for an element of that timestamp
/// with the same op and payload: the stored message is the record, for as long as the inbox keeps it.
public struct Idempotency: Sendable, Equatable {
    /// Seconds the record of a backend's `id` is remembered at least (at most twice as long).
    public static let backendTTL = 86_400

    public var id: String
    /// ``bodyHash(_:)`` of the push: the same key with another body is a conflict (HTTP 409).
    public var bodyHash: String

    public init(id: String, bodyHash: String) {
        self.id = id
        self.bodyHash = bodyHash
    }

    /// The id the gateway gives a push sent without one at `nowMillis` (the time it passes to `store.lua`):
    /// 12 hex digits of the time and 4 of `random`, 16 lowercase hex digits in all.
    public static func generatedID(nowMillis: UInt64, random: UInt64) -> String {
        // Written as 16 bytes at once: String(radix:), zero padding and concatenations cost about 1,800 instructions
        // per push (3 % of a transient push, callgrind), this about 90.
        let value = (nowMillis & 0xFFFF_FFFF_FFFF) << 16 | random & 0xFFFF
        return String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xF
                buffer[index] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
            }
            return 16
        }
    }

    /// The timestamp (unix ms) of a generated id, nil for an id of another form: a backend that retries a 503 sends
    /// the generated id back, and the push is looked for in the inbox at that time.
    public static func generatedTime(_ id: String) -> UInt64? {
        let utf8 = id.utf8
        guard utf8.count == 16, utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            return nil
        }
        return UInt64(id.prefix(12), radix: 16)
    }

    /// Where the record of this push for `uid` goes at `nowSeconds`, the unix second that hash expires at (the end
    /// of the next generation), and the hashes an earlier record may be in, current generation first.
    public func records(uid: String, nowSeconds: UInt64) -> (write: String, expiresAt: UInt64, lookups: [String]) {
        let ttl = UInt64(Self.backendTTL)
        let generation = nowSeconds / ttl
        let write = RedisKeys.idempotency(uid, ttl: Self.backendTTL, generation: generation)
        var lookups = [write]
        if generation > 0 { lookups.append(RedisKeys.idempotency(uid, ttl: Self.backendTTL, generation: generation - 1)) }
        return (write, (generation + 2) * ttl, lookups)
    }
}
