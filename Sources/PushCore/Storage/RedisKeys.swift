/// Every Redis key, hash field and pub/sub channel pushgw uses, in one place (SPEC §5).
///
/// Swift code builds no key or channel name anywhere else. The Lua scripts in `Storage/Scripts/` get their keys from
/// here as `KEYS`, but build the `pg:node:<id>` channel (in `prelude.lua`, ``nodeChannel(_:)``) and the hash fields
/// themselves: change both together.
///
/// Every key of one user carries the hash tag `{u:<uid>}`, so a script that touches a user's inbox, meta and
/// sessions touches one slot, as Redis Cluster requires; keys that belong to no user and are written together
/// (the bans and their version) share a tag of their own.
public enum RedisKeys {
    /// `pg:{u:<uid>}:inbox`, a list: the user's stored messages, oldest first, contiguous in seq, capped at
    /// `inbox.max` and trimmed from the head only. Each element is a ``StoredMessage/encoded`` message.
    public static func inbox(_ uid: String) -> String { "pg:{u:\(uid)}:inbox" }

    /// `pg:{u:<uid>}:meta`, a hash: `seq` the last seq assigned, `read` the read cursor, `unread` the unread
    /// count, and `dev:<key>` (``deviceCursorField(_:)``) each device's ACK cursor. It expires 4 × `inbox.ttl`
    /// after the last store, so seq does not restart soon after the inbox itself expires.
    public static func meta(_ uid: String) -> String { "pg:{u:\(uid)}:meta" }

    /// `pg:{u:<uid>}:sess`, a hash: device key → `<node>|<platform>|<since unix s>` (``DeviceSession``), expiring;
    /// the node holding the device refreshes it. Node ids must not contain `|`.
    public static func sessions(_ uid: String) -> String { "pg:{u:\(uid)}:sess" }

    /// `pg:{u:<uid>}:polls`, a hash: node id → the unix second until which a long-poll
    /// (`GET /v1/users/{uid}/messages?wait=S`) of that node waits for the user's next stored message. `store.lua`
    /// publishes each stored message to these nodes as to the nodes holding sessions, and drops fields past their
    /// time; a node removes its field when its last poll for the user is answered.
    public static func polls(_ uid: String) -> String { "pg:{u:\(uid)}:polls" }

    /// `pg:{u:<uid>}:idem:<ttl>:<generation>`, a hash: the user's idempotency records of one ttl class written
    /// during one generation (unix seconds / ttl): push `id` → `<seq>:<body hash>`, the seq that push got for the user
    /// and the ``bodyHash(_:)`` of its body. Expires at the end of the next generation (``Idempotency``); `store.lua`
    /// keeps the expiry it gave it in meta field `i:<ttl>`.
    public static func idempotency(_ uid: String, ttl: Int, generation: UInt64) -> String {
        "pg:{u:\(uid)}:idem:\(ttl):\(generation)"
    }

    /// `pg:{u:<uid>}:push`, a hash: device key → its push token as JSON (``PushToken/json``:
    /// `{"provider","token","topic","sandbox"}`), set by `PUT /v1/users/{uid}/devices/{key}/push` (SPEC §10). No
    /// expiry: a token lives until the app replaces it, `DELETE` removes it, or a provider calls it invalid.
    public static func pushTokens(_ uid: String) -> String { "pg:{u:\(uid)}:push" }

    /// The notification stream `store.lua` appends a user's notifications to (SPEC §10): `pg:notify` on one Redis
    /// server; on a Redis Cluster one stream per slot, `pg:notify:{<tag>}` with the tag of ``RedisSlot/tag(of:)``
    /// for the user's slot, since a script may only touch keys of the user's slot.
    public static func notifyStream(forUser uid: String, cluster: Bool) -> String {
        guard cluster else { return notifyStream }
        return "pg:notify:{\(RedisSlot.tag(of: RedisSlot.of(key: meta(uid))))}"
    }

    /// The presence stream (SPEC §10, `presence.events`): `pg:presence` on one Redis server; on a Redis Cluster the
    /// stream of the user's slot, `pg:presence:{<tag>}` (the session scripts may only touch that slot). Entries
    /// `user`, `event` (`online` | `offline`), `ts` (unix s), capped at about 100,000.
    public static func presenceStream(forUser uid: String, cluster: Bool) -> String {
        guard cluster else { return "pg:presence" }
        return "pg:presence:{\(RedisSlot.tag(of: RedisSlot.of(key: meta(uid))))}"
    }

    /// `pg:notify`: the notification stream on one Redis server.
    public static let notifyStream = "pg:notify"

    /// `pg:notify:ring`, a pub/sub channel (Redis Cluster only): the store script publishes the name of the stream
    /// it appended notifications to, so that the notifiers read it at once (one command cannot block on the
    /// streams of several slots).
    public static let notifyRing = "pg:notify:ring"

    /// What a cluster's notification streams match (`SCAN … MATCH`): `pg:notify:{<tag>}`.
    public static let notifyStreamPattern = "pg:notify:{*}"

    /// `pg:notify:stats`, a hash: `<provider>:<result>` → count (results `sent`, `failed`, `retried`, `invalid`),
    /// incremented by every notifier as it settles an attempt; `/metrics` shows it.
    public static let notifyStats = "pg:notify:stats"

    /// `pg:notify:dead`, a stream: notifications given up (attempts used up, refused for good, unreadable), each
    /// with its fields, `reason` and the `id` it had in ``notifyStream`` (`pushgw ctl notify` shows them).
    public static let notifyDeadLetters = "pg:notify:dead"

    /// `pg:nodes`, a hash: node id → its address, connection count and updated-at (`GET /v1/nodes`, register).
    public static let nodes = "pg:nodes"

    /// `pg:counts:<node>`, a hash: the node's member count per group, ``topicCountField(_:)`` and
    /// ``roomCountField(_:)`` → count. Rewritten with each registry refresh, expiring with the node, so the counts of
    /// a dead node vanish.
    public static func counts(_ node: String) -> String { "pg:counts:\(node)" }

    /// The field of ``counts(_:)`` counting topic `name`'s members on one node: `t:<name>`.
    public static func topicCountField(_ name: String) -> String { "t:\(name)" }

    /// The field of ``counts(_:)`` counting room `id`'s members on one node: `r:<id>`. A goim room id is
    /// `type://room`, so `roomCountField("live://")` is the prefix of every field of the rooms of type `live`.
    public static func roomCountField(_ id: String) -> String { "r:\(id)" }

    /// Channel `pg:node:<id>`: stored deliveries for devices held by node `id`; each message is a ``NodeDelivery``
    /// (`<uid>\n<encoded message>`), published by `store.lua`.
    public static func nodeChannel(_ id: String) -> String { "pg:node:\(id)" }

    /// Channel `pg:topic:<name>`: fan-out of one topic's (transient) messages between nodes.
    public static func topicChannel(_ name: String) -> String { "pg:topic:\(name)" }

    /// Channel `pg:all`: fan-out of broadcast messages between nodes.
    public static let broadcastChannel = "pg:all"

    /// `pg:{bans}`, a hash: ban id → the ban as JSON (``Ban/json``: `{"id","ip","user","device","reason",
    /// "expires_at"}`). Bans belong to no user, so they carry a hash tag of their own (SPEC §9): `bans.lua` writes
    /// the hash and ``bansVersion`` in one slot. An expired ban stays until `GET /v1/bans` removes it; every node
    /// ignores it meanwhile.
    public static let bans = "pg:{bans}"

    /// `pg:{bans}:v`, a string: a counter `bans.lua` increments with every ban added or lifted. Each worker reads
    /// it twice a second and reloads ``bans`` only when it changed, so a change reaches every node within a second
    /// for the cost of one tiny GET.
    public static let bansVersion = "pg:{bans}:v"

    /// `pg:{rules}`, a string: the route rules of `PUT /v1/route/rules` as JSON (``RouteRules/json``), with a hash
    /// tag of its own. Each worker reads it twice a second (one small key) and applies it when its bytes changed;
    /// missing means the defaults.
    public static let routeRules = "pg:{rules}"

    /// The field of ``meta(_:)`` holding device `key`'s ACK cursor: `dev:<key>`.
    public static func deviceCursorField(_ key: String) -> String { "dev:\(key)" }
}
