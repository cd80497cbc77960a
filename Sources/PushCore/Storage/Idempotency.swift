/// A stored push's idempotency key (SPEC §3 `id`) and where `store.lua` keeps and looks up its records.
///
/// Records live under each user's tag (SPEC §9: one slot per script), one hash per ttl class and generation
/// (``RedisKeys/idempotency(_:ttl:generation:)``): a generation lasts the class's ttl, a record is written into the
/// current one and looked up in the current and the previous one, so it is remembered between ttl and 2 × ttl
/// seconds. A push thus adds a field to a hash that usually exists already, instead of a key with an expiry of its
/// own per push (which was the largest single cost of a stored push in Redis).
public struct Idempotency: Sendable, Equatable {
    /// Seconds the record of a backend's `id` is remembered at least.
    public static let backendTTL = 86_400
    /// Seconds the record of a push sent without an `id` is remembered at least: long enough for a backend to retry
    /// a 503 whose outcome was unknown with the id it names, short enough that Redis does not keep one record per
    /// push for a day. (Centrifugo keeps its idempotency results 5 minutes.)
    public static let generatedTTL = 300

    public var id: String
    /// ``bodyHash(_:)`` of the push: the same key with another body is a conflict (HTTP 409).
    public var bodyHash: String
    /// The gateway generated `id` for this push just now: no earlier record can exist, so none is looked up.
    public var generated: Bool

    public init(id: String, bodyHash: String, generated: Bool = false) {
        self.id = id
        self.bodyHash = bodyHash
        self.generated = generated
    }

    /// The id the gateway gives a push sent without one: 16 lowercase hex digits of `value`.
    public static func generatedID(_ value: UInt64) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Whether `id` has the form of a generated id: a backend that retries a 503 sends it back, and its record is in
    /// the generated class.
    static func looksGenerated(_ id: String) -> Bool {
        let utf8 = id.utf8
        return utf8.count == 16 && utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// The ttl class the record is written in.
    public var ttl: Int { generated ? Self.generatedTTL : Self.backendTTL }

    /// Where the record of this push for `uid` goes at `nowSeconds`, the unix second that hash expires at (the end
    /// of the generation after the current one), and the hashes an earlier record may be in, current generation
    /// first: none for a generated id; the backend class's two generations, and the generated class's two too when
    /// the id has a generated id's form.
    public func records(uid: String, nowSeconds: UInt64) -> (write: String, expiresAt: UInt64, lookups: [String]) {
        let ttl = UInt64(self.ttl)
        let generation = nowSeconds / ttl
        let write = RedisKeys.idempotency(uid, ttl: self.ttl, generation: generation)
        guard !generated else { return (write, (generation + 2) * ttl, []) }
        var lookups = [write]
        if generation > 0 { lookups.append(RedisKeys.idempotency(uid, ttl: self.ttl, generation: generation - 1)) }
        if Self.looksGenerated(id) {
            let short = UInt64(Self.generatedTTL)
            let current = nowSeconds / short
            lookups.append(RedisKeys.idempotency(uid, ttl: Self.generatedTTL, generation: current))
            if current > 0 {
                lookups.append(RedisKeys.idempotency(uid, ttl: Self.generatedTTL, generation: current - 1))
            }
        }
        return (write, (generation + 2) * ttl, lookups)
    }
}
