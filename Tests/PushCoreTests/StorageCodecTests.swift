// The storage layer without Redis: message encoding, key formats, script call builders and reply decoders.
// StorageScriptTests runs the same scripts against a real server; RESP and SHA-1 have their own suites.
import Testing

@testable import PushCore

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite struct StorageCodecTests {
    // MARK: StoredMessage

    static let payloads: [[UInt8]] = [[], bytes("plain"), bytes("a:b:c:\n\nd:"), Array(0...255), [13, 10, 58, 0]]

    /// Encoding then decoding gives the message back, whatever the payload bytes.
    @Test(arguments: payloads)
    func storedMessageRoundTrip(payload: [UInt8]) {
        let message = StoredMessage(
            seq: 17, op: 1000, timestampMillis: 1_700_000_000_123, expiresAt: 1_700_604_800, payload: payload)
        #expect(message.encoded == bytes("17:1000:1700000000123:1700604800:") + payload)
        #expect(StoredMessage(encoded: message.encoded) == message)
        #expect(StoredMessage(encoded: message.encoded[...]) == message)
    }

    /// The largest field values survive.
    @Test func storedMessageExtremes() {
        let message = StoredMessage(seq: .max, op: .max, timestampMillis: .max, expiresAt: 0, payload: [0])
        #expect(StoredMessage(encoded: message.encoded) == message)
    }

    /// Malformed elements, named by what is wrong, decode to nil.
    @Test(arguments: [
        ("empty", ""), ("three fields", "1:2:3:"), ("last field unterminated", "1:2:3:4"),
        ("letter in seq", "a:2:3:4:"),
        ("empty seq", ":2:3:4:"), ("negative seq", "-1:2:3:4:"), ("op over UInt32", "1:4294967296:3:4:x"),
        ("seq over UInt64", "18446744073709551616:1:3:4:x"), ("space", "1: 2:3:4:"),
    ])
    func storedMessageMalformed(name: String, text: String) {
        #expect(StoredMessage(encoded: bytes(text)) == nil, "\(name)")
    }

    /// Expired when expires_at <= now; 0 never expires.
    @Test func storedMessageExpiry() {
        let message = StoredMessage(seq: 1, op: 1000, timestampMillis: 0, expiresAt: 100, payload: [])
        #expect(!message.isExpired(atSeconds: 99))
        #expect(message.isExpired(atSeconds: 100))
        #expect(
            !StoredMessage(seq: 1, op: 1000, timestampMillis: 0, expiresAt: 0, payload: []).isExpired(atSeconds: .max))
    }

    /// A node channel message is `<uid>\n<element>`, payload newlines included.
    @Test func nodeDelivery() {
        let message = StoredMessage(seq: 3, op: 1001, timestampMillis: 5, expiresAt: 6, payload: bytes("a\nb"))
        let delivery = NodeDelivery(uid: "user:42", message: message)
        #expect(delivery.encoded == bytes("user:42\n3:1001:5:6:a\nb"))
        #expect(NodeDelivery(payload: delivery.encoded) == delivery)
        #expect(NodeDelivery(payload: bytes("no newline")) == nil)
        #expect(NodeDelivery(payload: bytes("u\nnot a message")) == nil)
    }

    // MARK: scripts, keys, calls

    /// Every script is embedded, named after its file, starts with the prelude, and its SHA is the SHA-1 of
    /// prelude and file together.
    @Test func scriptsAreEmbedded() {
        #expect(
            Scripts.all.map(\.name) == ["store", "session", "sync", "ack", "read", "leave", "user", "route", "bans"])
        #expect(String(decoding: Scripts.prelude, as: UTF8.self).hasPrefix("-- prelude.lua:"))
        #expect(Scripts.prelude.last == UInt8(ascii: "\n"))
        for script in Scripts.all {
            #expect(script.source.starts(with: Scripts.prelude))
            let file = String(decoding: script.source.dropFirst(Scripts.prelude.count), as: UTF8.self)
            #expect(file.hasPrefix("-- \(script.name).lua:"))
            #expect(script.sha1 == SHA1.hex(script.source))
            #expect(script.sha1.count == 40)
        }
        #expect(Set(Scripts.all.map(\.sha1)).count == Scripts.all.count)
    }

    /// Key and channel formats of SPEC §5; a user's keys share one hash tag.
    @Test func keyFormats() {
        #expect(RedisKeys.inbox("42") == "pg:{u:42}:inbox")
        #expect(RedisKeys.meta("42") == "pg:{u:42}:meta")
        #expect(RedisKeys.sessions("42") == "pg:{u:42}:sess")
        #expect(RedisKeys.idempotency("abc", ttl: 300, generation: 7) == "pg:{u:abc}:idem:300:7")
        #expect(RedisKeys.nodes == "pg:nodes")
        #expect(RedisKeys.nodeChannel("w1") == "pg:node:w1")
        #expect(RedisKeys.topicChannel("news") == "pg:topic:news")
        #expect(RedisKeys.broadcastChannel == "pg:all")
        #expect(RedisKeys.polls("42") == "pg:{u:42}:polls")
        #expect(RedisKeys.counts("w1") == "pg:counts:w1")
        #expect(RedisKeys.topicCountField("news") == "t:news")
        #expect(RedisKeys.roomCountField("live://1") == "r:live://1")
        #expect(RedisKeys.deviceCursorField("phone") == "dev:phone")
    }

    /// KEYS and ARGV in the order the scripts read them.
    @Test func callBuilders() {
        let store = StoreCall(
            uid: "u", op: 1000, payload: [0, 1], nowMillis: 1_700_000_000_123, ttl: 60, inboxMax: 200,
            inboxTTL: 604_800,
            node: "n1", idempotency: Idempotency(id: "id1", bodyHash: "hash"))
        // The record in the backend class's current generation (1_700_000_000 / 86_400 = 19_675), looked up there and
        // in the previous one.
        #expect(
            store.keys == [
                "pg:{u:u}:inbox", "pg:{u:u}:meta", "pg:{u:u}:sess", "pg:{u:u}:polls", "pg:{u:u}:idem:86400:19675",
                "pg:{u:u}:idem:86400:19675", "pg:{u:u}:idem:86400:19674",
            ].map(bytes))
        // A header (cap, inbox ttl, node, message count), then 13 fields per message (the last two: notify, always);
        // the record expires at the end of the next generation.
        #expect(
            store.args == ["200", "604800", "n1", "1", "1000"].map(bytes) + [[0, 1]]
                + ["1700000000123", "60", "u", "id1", "2", "hash", "86400", "\((19_675 + 2) * 86_400)", "", "", ""]
                .map(bytes))
        let plain = StoreCall(
            uid: "u", op: 1000, payload: [], nowMillis: 1, ttl: 0, inboxMax: 1, inboxTTL: 1, node: "n")
        #expect(plain.keys.count == 4)
        #expect(plain.args.count == 17 && plain.args[9...].allSatisfy(\.isEmpty))
        #expect(plain.evalsha.prefix(3) == [bytes("EVALSHA"), bytes(Scripts.store.sha1), bytes("4")])
        // A generated id names its time; a retry with it is looked up in the backend's records and in the inbox at
        // that time.
        let generated = Idempotency.generatedID(nowMillis: 1_700_000_000_123, random: 0xabc)
        #expect(generated == "018bcfe5687b0abc" && Idempotency.generatedTime(generated) == 1_700_000_000_123)
        #expect(Idempotency.generatedID(nowMillis: 0, random: 0) == "0000000000000000")
        #expect(Idempotency.generatedID(nowMillis: .max, random: 0x1_2345) == "ffffffffffff2345")
        #expect(Idempotency.generatedTime("order-1") == nil && Idempotency.generatedTime("018BCFE5687B0ABC") == nil)
        let fresh = StoreCall(
            uid: "u", op: 1000, payload: [], nowMillis: 1_700_000_000_000, ttl: 0, inboxMax: 1, inboxTTL: 1, node: "n",
            idempotency: Idempotency(id: generated, bodyHash: "hash"))
        #expect(fresh.args.dropLast(2).last == bytes("1700000000123"))
        // A backend's own key of that form naming a time no inbox can still hold: not looked for in the inbox.
        let random = StoreCall(
            uid: "u", op: 1000, payload: [], nowMillis: 1_700_000_000_000, ttl: 0, inboxMax: 1, inboxTTL: 3600, node: "n",
            idempotency: Idempotency(id: "f00dfacecafe0123", bodyHash: "hash"))
        #expect(random.args.dropLast(2).last == [])
        // A push with notify: the user's push tokens and the stream as two more keys, the JSON and always as the last
        // two fields.
        let notifying = StoreCall(
            uid: "u", op: 1000, payload: [], nowMillis: 1, ttl: 0, inboxMax: 1, inboxTTL: 1, node: "n",
            notification: .init(json: bytes(#"{"title":"t"}"#), always: true, stream: "pg:notify"))
        #expect(notifying.keys.suffix(2) == ["pg:{u:u}:push", "pg:notify"].map(bytes))
        #expect(notifying.args.suffix(2) == [bytes(#"{"title":"t"}"#), bytes("1")])
        let batch = StoreBatchCall([store, plain, fresh])
        #expect(batch.keys == store.keys + plain.keys + fresh.keys)
        #expect(batch.evalsha == Scripts.store.evalsha(keys: batch.keys, args: batch.args))
        #expect(batch.args == Array(store.args.prefix(3)) + [bytes("3")] + [store, plain, fresh].flatMap { $0.args.dropFirst(4) })
        let acks = AckBatchCall([AckCall(uid: "u", device: "d", seq: 4), AckCall(uid: "v", device: "e", seq: 5)])
        #expect(acks.keys == ["pg:{u:u}:meta", "pg:{u:v}:meta"].map(bytes))
        #expect(acks.args == ["d", "4", "e", "5"].map(bytes))
        #expect(plain.eval[1] == Scripts.store.source)

        let session = SessionCall(
            uid: "u", device: "d", node: "n", platform: "ios", nowSeconds: 5, ttl: 60, lastSeq: nil, limit: 10)
        // The device count, then 8 fields per device; 3 keys per device.
        #expect(session.args == ["1", "d", "n", "ios", "5", "60", "-1", "10", "u"].map(bytes))
        #expect(session.keys == ["pg:{u:u}:inbox", "pg:{u:u}:meta", "pg:{u:u}:sess"].map(bytes))
        let other = SessionCall(
            uid: "v", device: "e", node: "n", platform: "p", nowSeconds: 5, ttl: 60, lastSeq: 7, limit: 1)
        #expect(other.args[6] == bytes("7"))
        let sessions = SessionBatchCall([session, other])
        #expect(sessions.keys == session.keys + other.keys)
        #expect(sessions.args == [bytes("2")] + session.args.dropFirst() + other.args.dropFirst())
        #expect(SyncCall(uid: "u", after: 3, limit: 100, nowSeconds: 9).args == ["3", "100", "9"].map(bytes))
        #expect(AckCall(uid: "u", device: "d", seq: 4).keys == [bytes("pg:{u:u}:meta")])
        #expect(ReadCall(uid: "u", seq: 4).keys == ["pg:{u:u}:inbox", "pg:{u:u}:meta"].map(bytes))
        #expect(LeaveCall(uid: "u", device: "d", node: "n").keys == [bytes("pg:{u:u}:sess")])
        #expect(UserCall(uid: "u").keys == ["pg:{u:u}:meta", "pg:{u:u}:sess", "pg:{u:u}:inbox"].map(bytes))
    }

    /// The three store outcomes; a stored one carries its element, whose seq must be the reply's.
    /// (A reply has one entry per message: a call of one message answers `[entry]`.)
    @Test func storeDecode() throws {
        let element = RedisValue.string(Array("5:1000:7:0:hi".utf8))
        let message = StoredMessage(seq: 5, op: 1000, timestampMillis: 7, expiresAt: 0, payload: Array("hi".utf8))
        let stored = RedisValue.array([.integer(5), .integer(0), .integer(3), .integer(2), .integer(4), element])
        #expect(try StoreCall.decode(.array([stored])) == .stored(seq: 5, unread: 3, published: 2, devices: 4, message: message))
        #expect(throws: ScriptError.self) {
            try StoreCall.decode(.array([.array([.integer(5), .integer(0), .integer(3), .integer(2), .integer(4)])]))
        }
        #expect(throws: ScriptError.self) {
            try StoreCall.decode(
                .array([.array([.integer(6), .integer(0), .integer(3), .integer(2), .integer(4), element])]))
        }
        let duplicate = RedisValue.array([.integer(5), .integer(1), .integer(3)])
        #expect(try StoreCall.decode(.array([duplicate])) == .duplicate(seq: 5, unread: 3))
        #expect(try StoreCall.decode(.array([.array([.integer(-1)])])) == .conflict)
        #expect(throws: ScriptError.self) { try StoreCall.decode(.array([stored, stored])) }
    }

    /// A batch reply: one result per message, an error element failing only its message.
    @Test func storeBatchDecode() throws {
        let stored = RedisValue.array([
            .integer(5), .integer(0), .integer(3), .integer(2), .integer(4), .string(bytes("5:1000:7:0:hi")),
        ])
        let entries = try StoreBatchCall.decode(
            .array([stored, .error("WRONGTYPE Operation against a key"), .array([.integer(-1)]), .integer(7)]))
        #expect(entries.count == 4)
        #expect((try? entries[0].get())?.seq == 5)
        #expect(throws: ScriptError.self) { try entries[1].get() }
        #expect(try entries[2].get() == .conflict)
        #expect(throws: ScriptError.self) { try entries[3].get() }
        #expect(throws: ScriptError.self) { try StoreBatchCall.decode(.error("ERR pushgw store: op")) }
        let acks = try AckBatchCall.decode(.array([.integer(3), .integer(-1), .error("OOM")]))
        #expect(try acks[0].get() == 3)
        #expect(throws: ScriptError.self) { try acks[1].get() }
        #expect(throws: ScriptError.self) { try acks[2].get() }
    }

    /// Calls split by slot (Redis Cluster), in order within a slot, and by size; standalone takes any keys.
    @Test func batchesBySlot() {
        func call(_ uid: String, _ payload: Int = 0) -> StoreCall {
            StoreCall(
                uid: uid, op: 1, payload: [UInt8](repeating: 0, count: payload), nowMillis: 1, ttl: 0, inboxMax: 1,
                inboxTTL: 1, node: "n")
        }
        // {u:a} and {u:b} are in different slots.
        #expect(RedisSlot.of(key: RedisKeys.meta("a")) != RedisSlot.of(key: RedisKeys.meta("b")))
        let items = [call("a"), call("b"), call("a"), call("b"), call("a")]
        #expect(StoreBatchCall.batches(of: items, bySlot: true, maxItems: 10, maxWeight: .max) == [[0, 2, 4], [1, 3]])
        #expect(StoreBatchCall.batches(of: items, bySlot: false, maxItems: 10, maxWeight: .max) == [[0, 1, 2, 3, 4]])
        #expect(StoreBatchCall.batches(of: items, bySlot: false, maxItems: 2, maxWeight: .max) == [[0, 1], [2, 3], [4]])
        #expect(StoreBatchCall.batches(of: items, bySlot: true, maxItems: 2, maxWeight: .max) == [[0, 2], [4], [1, 3]])
        let heavy = [call("a", 1000), call("a", 1000), call("a"), call("a", 5000)]
        #expect(StoreBatchCall.batches(of: heavy, bySlot: false, maxItems: 10, maxWeight: 2200) == [[0, 1, 2], [3]])
        var otherCap = call("c")
        otherCap.inboxMax = 2
        #expect(StoreBatchCall.batches(of: [call("a"), otherCap, call("b")], bySlot: false, maxItems: 10, maxWeight: .max) == [[0], [1], [2]])
    }

    /// Redis Cluster's CRC16 (XMODEM) and key slots, against known values (the cluster specification, CLUSTER KEYSLOT).
    @Test func clusterSlots() {
        #expect(RedisSlot.crc16(bytes("123456789")) == 0x31C3)
        #expect(RedisSlot.crc16([]) == 0)
        #expect(RedisSlot.of(key: "123456789") == 0x31C3 % 16384)
        #expect(RedisSlot.of(key: "foo") == 12182)
        #expect(RedisSlot.of(key: "bar") == 5061)
        #expect(RedisSlot.of(key: "{user1000}.following") == RedisSlot.of(key: "{user1000}.followers"))
        #expect(RedisSlot.of(key: "{user1000}.following") == RedisSlot.of(key: "user1000"))
        // An empty tag is no tag: the whole key is hashed.
        #expect(RedisSlot.of(key: "foo{}{bar}") == RedisSlot.crc16(bytes("foo{}{bar}")) % 16384)
        #expect(RedisSlot.of(key: "foo{{bar}}zap") == RedisSlot.of(key: "{bar"))
        #expect(RedisSlot.of(key: RedisKeys.inbox("42")) == RedisSlot.of(key: RedisKeys.sessions("42")))
    }

    /// Replies of the wrong shape throw, naming the script; they never trap.
    @Test(arguments: [
        RedisValue.integer(1), .null, .array([]), .array([.integer(1)]),
        .array([.integer(1), .integer(0), .integer(1)]),
        .array([.integer(1), .integer(2), .integer(1), .integer(0)]),
        .array([.integer(0), .integer(0), .integer(0), .integer(0)]),
        .array([.integer(1), .integer(0), .integer(-1), .integer(0)]),
        .array([.string(bytes("1")), .integer(0), .integer(1), .integer(0)]),
        .array([.integer(-1), .integer(0)]),
    ])
    func storeDecodeMalformed(reply: RedisValue) {
        let error = #expect(throws: ScriptError.self) { try StoreCall.decode(reply) }
        #expect(error?.script == "store")
        #expect(error?.isServerError == false)
    }

    /// Error replies throw as server errors; NOSCRIPT is recognised.
    @Test func errorReplies() {
        let noScript = #expect(throws: ScriptError.self) {
            try SyncCall.decode(.error("NOSCRIPT No matching script. Please use EVAL."))
        }
        #expect(noScript?.isNoScript == true)
        #expect(noScript?.isServerError == true)
        let other = #expect(throws: ScriptError.self) { try AckCall.decode(.error("ERR pushgw ack: seq")) }
        #expect(other?.isNoScript == false)
        #expect(other?.description.contains("ack") == true)
    }

    /// Session, sync, read, ack, leave and user replies, and their malformed forms.
    @Test func otherDecoders() throws {
        let element = RedisValue.string(bytes("4:1000:9:0:hi"))
        let message = StoredMessage(seq: 4, op: 1000, timestampMillis: 9, expiresAt: 0, payload: bytes("hi"))
        #expect(
            try SessionCall.decode(.array([.array([.integer(4), .integer(2), .integer(1), .integer(3), .integer(1), element])]))
                == SessionResult(seq: 4, unread: 2, read: 1, firstKept: 3, remote: true, messages: [message]))
        #expect(throws: ScriptError.self) {
            try SessionCall.decode(.array([.array([.integer(4), .integer(2), .integer(1), .integer(3)])]))
        }
        #expect(try SyncCall.decode(.array([.integer(4), element])) == SyncResult(seq: 4, messages: [message]))
        #expect(throws: ScriptError.self) { try SyncCall.decode(.array([.integer(4), .string(bytes("junk"))])) }
        #expect(throws: ScriptError.self) { try SyncCall.decode(.array([.integer(4), .integer(5)])) }
        #expect(throws: ScriptError.self) { try SyncCall.decode(.array([])) }
        #expect(try ReadCall.decode(.array([.integer(0), .integer(8)])) == ReadResult(unread: 0, read: 8))
        #expect(throws: ScriptError.self) { try ReadCall.decode(.array([.integer(0)])) }
        #expect(try AckCall.decode(.array([.integer(3)])) == 3)
        #expect(throws: ScriptError.self) { try AckCall.decode(.array([.integer(-3)])) }
        #expect(throws: ScriptError.self) { try AckCall.decode(.integer(3)) }
        #expect(try LeaveCall.decode(.integer(1)) == true)
        #expect(try LeaveCall.decode(.integer(0)) == false)
        #expect(throws: ScriptError.self) { try LeaveCall.decode(.integer(2)) }

        let user = RedisValue.array([
            .integer(9), .integer(2), .integer(7), .integer(5), .string(bytes("phone")), .string(bytes("w1|ios|170")),
            .string(bytes("web")), .string(bytes("w2|we|b|171")),
        ])
        #expect(
            try UserCall.decode(user)
                == UserResult(
                    seq: 9, unread: 2, read: 7, kept: 5,
                    sessions: [
                        DeviceSession(key: "phone", node: "w1", platform: "ios", since: 170),
                        DeviceSession(key: "web", node: "w2", platform: "we|b", since: 171),
                    ]))
        #expect(throws: ScriptError.self) {
            try UserCall.decode(.array([.integer(9), .integer(2), .integer(7), .integer(5), .string(bytes("k"))]))
        }
        #expect(throws: ScriptError.self) {
            try UserCall.decode(
                .array([
                    .integer(9), .integer(2), .integer(7), .integer(5), .string(bytes("k")), .string(bytes("w1|170")),
                ]))
        }
    }

    /// Session hash values: node up to the first `|`, since after the last.
    @Test func deviceSessionValue() {
        let session = DeviceSession(key: "k", node: "w1", platform: "ios", since: 12)
        #expect(session.value == "w1|ios|12")
        #expect(DeviceSession(key: "k", value: bytes(session.value)) == session)
        #expect(
            DeviceSession(key: "k", value: bytes("w1||12"))
                == DeviceSession(key: "k", node: "w1", platform: "", since: 12))
        #expect(DeviceSession(key: "k", value: bytes("w1|12")) == nil)
        #expect(DeviceSession(key: "k", value: bytes("w1|ios|x")) == nil)
    }
}
