import Testing

@testable import PushCore

/// The field/value list of a whole APNs entry as the store script writes it, with `changes` applied (nil removes
/// the field).
private func fields(_ changes: [String: [UInt8]?] = [:]) -> [[UInt8]] {
    var pairs: [(String, [UInt8])] = [
        ("u", Array("u1".utf8)), ("d", Array("phone".utf8)), ("p", Array("apns".utf8)),
        ("t", Array("a1b2c3".utf8)), ("tp", Array("com.example.app".utf8)), ("sb", Array("1".utf8)),
        ("n", Array(#"{"title":"Hi","body":"You have mail","priority":"normal"}"#.utf8)),
        ("b", Array("3".utf8)), ("s", Array("17".utf8)), ("ts", Array("1700000000123".utf8)),
        ("op", Array("1000".utf8)),
    ]
    for (name, value) in changes {
        if let index = pairs.firstIndex(where: { $0.0 == name }) {
            if let value { pairs[index].1 = value } else { pairs.remove(at: index) }
        } else if let value {
            pairs.append((name, value))
        }
    }
    return pairs.flatMap { [Array($0.0.utf8), $0.1] }
}

/// The error reading `fields` throws, or nil.
private func entryError(_ fields: [[UInt8]]) -> NotificationEntryError? {
    do {
        _ = try NotificationEntry(fields: fields)
        return nil
    } catch {
        return error
    }
}

@Suite("Notifications: queue entries")
struct NotifyEntryTests {
    /// Every field read into its property.
    @Test func readsEveryField() throws {
        let entry = try NotificationEntry(fields: fields())
        #expect(entry.user == "u1" && entry.device == "phone" && entry.provider == .apns && entry.token == "a1b2c3")
        #expect(entry.topic == "com.example.app" && entry.sandbox)
        #expect(entry.notify == NotifyContent(title: "Hi", body: "You have mail", priority: .normal))
        #expect(entry.notifyJSON == Array(#"{"title":"Hi","body":"You have mail","priority":"normal"}"#.utf8))
        #expect(entry.badge == 3 && entry.seq == 17 && entry.timestampMillis == 1_700_000_000_123 && entry.op == 1000)
        #expect(entry.attempts == 0)
    }

    /// `encodedFields` gives back the store script's fields exactly (no `a` while attempts is 0), and reads back
    /// to the same entry with attempts counted.
    @Test func roundTrip() throws {
        var entry = try NotificationEntry(fields: fields())
        #expect(entry.encodedFields == fields())
        #expect(try NotificationEntry(fields: entry.encodedFields) == entry)
        entry.attempts = 3
        #expect(entry.encodedFields == fields(["a": Array("3".utf8)]))
        let retried = try NotificationEntry(fields: entry.encodedFields)
        #expect(retried == entry && retried.attempts == 3)
    }

    /// An entry made from parts encodes in the documented field order, and reads back equal.
    @Test func fromPartsInFieldOrder() throws {
        let entry = try NotificationEntry(
            user: "u2", device: "tab", provider: .fcm, token: "fcm:tok", notifyJSON: Array("{}".utf8), badge: 0,
            seq: 1, timestampMillis: 5, op: 1001, attempts: 1)
        let names = stride(from: 0, to: entry.encodedFields.count, by: 2).map {
            String(decoding: entry.encodedFields[$0], as: UTF8.self)
        }
        #expect(names == ["u", "d", "p", "t", "tp", "sb", "n", "b", "s", "ts", "op", "a"])
        #expect(names == NotificationEntry.Field.allCases.map(\.rawValue))
        #expect(try NotificationEntry(fields: entry.encodedFields) == entry)
    }

    /// As a Redis reply: a multi-bulk of bulk strings; a deleted entry (null) and other shapes are malformed.
    @Test func fromRedisReply() throws {
        let reply = RedisValue.array(fields().map { .string($0) })
        #expect(try NotificationEntry(fields: reply) == NotificationEntry(fields: fields()))
        #expect(throws: NotificationEntryError.malformed("the entry was deleted from the stream")) {
            try NotificationEntry(fields: RedisValue.null)
        }
        #expect(throws: NotificationEntryError.malformed("a field or value is not a string")) {
            try NotificationEntry(fields: RedisValue.array([.string(Array("u".utf8)), .integer(1)]))
        }
    }

    /// Each field but `a` is required; the error names it.
    @Test(arguments: NotificationEntry.Field.allCases.filter { $0 != .attempts })
    func missingField(_ field: NotificationEntry.Field) throws {
        let error = try #require(entryError(fields([field.rawValue: nil])))
        #expect(error == .missingField(field.rawValue) && error.code == "missing_field")
        #expect("\(error)" == "notification entry field \(field.rawValue): missing")
    }

    /// A value that is not what its field holds is refused, naming the field.
    @Test(arguments: [
        ("u", ""), ("d", ""), ("t", ""), ("p", "gcm"), ("p", "APNS"), ("sb", "2"), ("sb", ""), ("sb", "true"),
        ("b", "-1"), ("b", "x"), ("b", "1.5"), ("b", ""), ("b", "2147483648"), ("s", ""), ("s", "+5"), ("s", " 5"),
        ("ts", "99999999999999999999"), ("op", "4294967296"), ("a", "-0"), ("a", "one"),
        ("n", "not json"), ("n", "[]"), ("n", #"{"priority":"urgent"}"#), ("n", #"{"title":5}"#),
        ("n", #"{"data":[1]}"#), ("n", #"{"always":"yes"}"#), ("n", #"{"sound":{"critical":1}}"#),
    ])
    func badField(_ field: String, _ value: String) throws {
        let error = try #require(entryError(fields([field: Array(value.utf8)])))
        #expect(error.field == field && error.code == "bad_field", "\(error)")
    }

    /// Text fields must be UTF-8.
    @Test func invalidUTF8() throws {
        let error = try #require(entryError(fields(["u": [0x75, 0xff]])))
        #expect(error == .badField("u", "expected UTF-8 text"))
    }

    /// Errors say what was expected and what was found.
    @Test func errorText() throws {
        let error = try #require(entryError(fields(["b": Array("lots".utf8)])))
        #expect(
            "\(error)" == #"notification entry field b: expected a decimal integer from 0 to 2147483647, got "lots""#)
        let provider = try #require(entryError(fields(["p": Array("gcm".utf8)])))
        #expect("\(provider)" == #"notification entry field p: expected apns, fcm or webhook, got "gcm""#)
        let notify = try #require(entryError(fields(["n": Array(#"{"priority":1}"#.utf8)])))
        #expect("\(notify)" == "notification entry field n: notify.priority must be a string")
    }

    /// A webhook device may have an empty token; APNs and FCM devices may not.
    @Test func emptyTokenOnlyForWebhook() throws {
        let entry = try NotificationEntry(fields: fields(["p": Array("webhook".utf8), "t": []]))
        #expect(entry.provider == .webhook && entry.token.isEmpty)
        #expect(entryError(fields(["p": Array("fcm".utf8), "t": []])) == .badField("t", "expected a non-empty string"))
    }

    /// Unknown fields are ignored (a newer store script); a field twice, or an odd count, is an error.
    @Test func unknownRepeatedAndOddFields() throws {
        #expect(try NotificationEntry(fields: fields(["x": Array("1".utf8)])) == NotificationEntry(fields: fields()))
        #expect(entryError(fields() + [Array("b".utf8), Array("4".utf8)]) == .badField("b", "given twice"))
        #expect(entryError(fields() + [Array("x".utf8)]) == .malformed("expected field/value pairs, got 23 strings"))
    }

    // MARK: - The notify object

    /// Defaults: high priority, not always, no data; `null` members count as absent; unknown members ignored.
    @Test func notifyDefaults() throws {
        #expect(try NotifyContent(json: Array("{}".utf8)) == NotifyContent())
        let nulls = #"{"title":null,"body":null,"sound":null,"collapse_id":null,"priority":null,"data":null,"#
            + #""always":null,"badge_hint":7}"#
        let content = try NotifyContent(json: Array(nulls.utf8))
        #expect(content == NotifyContent() && content.priority == .high && !content.always && content.data.isEmpty)
    }

    /// Every member read; data keeps its order, a repeated name its first place and last value.
    @Test func notifyMembers() throws {
        let json = #"{"title":"T","body":"B","sound":"default","collapse_id":"chat-7","priority":"normal","#
            + #""always":true,"data":{"a":1,"b":{"c":[true]},"a":"again"}}"#
        let content = try NotifyContent(json: Array(json.utf8))
        #expect(content.title == "T" && content.body == "B" && content.sound == "default")
        #expect(content.collapseID == "chat-7" && content.priority == .normal && content.always)
        #expect(content.data.map(\.name) == ["a", "b"])
        #expect(content.data[0].value == .string("again"))
        #expect(content.data[1].value == .object([("c", .array([.bool(true)]))]))
    }
}
