/// One notification to deliver to one device: an entry of the notification stream (SPEC §10).
///
/// The store script adds one entry per device to notify, in the same call that stores the push; the `pushgw
/// notify` processes read them as a consumer group. Field names are short, values are bytes:
///
/// | field | holds |
/// |---|---|
/// | `u` | the user id |
/// | `d` | the device key |
/// | `p` | the provider: `apns`, `fcm` or `webhook` |
/// | `t` | the device's push token (never empty for `apns` and `fcm`) |
/// | `tp` | the APNs topic, the app's bundle id (may be empty) |
/// | `sb` | `1` for the APNs sandbox, else `0` |
/// | `n` | the push's `notify` object as the backend sent it (JSON) |
/// | `b` | the badge: the user's unread count after the push, decimal |
/// | `s` | the message's seq, decimal |
/// | `ts` | when the message was stored, unix milliseconds, decimal |
/// | `op` | the message's op, decimal |
/// | `a` | attempts made so far, decimal; absent means 0 (the store script never writes it) |
///
/// Fields the reader does not know are ignored, so a newer store script can add some while older notifiers still
/// run; a field given twice is an error.
public struct NotificationEntry: Sendable, Equatable {
    /// The stream field names, exactly as the store script writes them.
    public enum Field: String, Sendable, CaseIterable {
        case user = "u"
        case device = "d"
        case provider = "p"
        case token = "t"
        case topic = "tp"
        case sandbox = "sb"
        case notify = "n"
        case badge = "b"
        case seq = "s"
        case timestamp = "ts"
        case op = "op"
        case attempts = "a"
    }

    /// `u`: the user the message was stored for.
    public var user: String
    /// `d`: the device to notify, one of the user's device keys.
    public var device: String
    /// `p`: who delivers it.
    public var provider: PushProvider
    /// `t`: the device's push token (APNs device token, FCM registration token, or the webhook's own).
    public var token: String
    /// `tp`: the APNs topic (the app's bundle id); may be empty, and is for other providers.
    public var topic: String
    /// `sb`: the token belongs to APNs' sandbox (development builds of the app), so `apns.sandbox_url` serves it.
    public var sandbox: Bool
    /// `n`: the push's `notify` object, byte for byte as the backend sent it.
    public private(set) var notifyJSON: [UInt8]
    /// `n`, parsed.
    public private(set) var notify: NotifyContent
    /// `b`: the user's unread count after this push, the number on the app icon.
    public var badge: Int
    /// `s`: the stored message's seq.
    public var seq: UInt64
    /// `ts`: when the message was stored, unix milliseconds.
    public var timestampMillis: UInt64
    /// `op`: the stored message's op.
    public var op: UInt32
    /// `a`: delivery attempts already made; 0 for an entry the store script added, n for a retry re-added after n
    /// failed attempts.
    public var attempts: Int

    /// An entry from its parts; `notifyJSON` must be a valid `notify` object.
    public init(
        user: String, device: String, provider: PushProvider, token: String, topic: String = "",
        sandbox: Bool = false, notifyJSON: [UInt8], badge: Int, seq: UInt64, timestampMillis: UInt64, op: UInt32,
        attempts: Int = 0
    ) throws(NotificationEntryError) {
        self.user = user
        self.device = device
        self.provider = provider
        self.token = token
        self.topic = topic
        self.sandbox = sandbox
        self.notifyJSON = notifyJSON
        do {
            notify = try NotifyContent(json: notifyJSON)
        } catch {
            throw .badField(Field.notify.rawValue, error.message)
        }
        self.badge = badge
        self.seq = seq
        self.timestampMillis = timestampMillis
        self.op = op
        self.attempts = attempts
    }

    /// Reads an entry from its field/value list as XREADGROUP or XRANGE return it: `[f1, v1, f2, v2, …]`.
    ///
    /// - Throws: ``NotificationEntryError`` naming the first field that is missing or bad.
    public init(fields: [[UInt8]]) throws(NotificationEntryError) {
        guard fields.count % 2 == 0 else {
            throw .malformed("expected field/value pairs, got \(fields.count) strings")
        }
        var values: [Field: [UInt8]] = [:]
        for index in stride(from: 0, to: fields.count, by: 2) {
            guard let field = Field(rawValue: String(decoding: fields[index], as: UTF8.self)) else { continue }
            guard values.updateValue(fields[index + 1], forKey: field) == nil else {
                throw .badField(field.rawValue, "given twice")
            }
        }
        let reader = Reader(values: values)
        let provider = try reader.provider()
        try self.init(
            user: try reader.text(.user, nonEmpty: true),
            device: try reader.text(.device, nonEmpty: true),
            provider: provider,
            token: try reader.text(.token, nonEmpty: provider != .webhook),
            topic: try reader.text(.topic, nonEmpty: false),
            sandbox: try reader.flag(.sandbox),
            notifyJSON: try reader.required(.notify),
            badge: Int(try reader.decimal(.badge, max: Int64(Int32.max))),
            seq: UInt64(try reader.decimal(.seq, max: Int64.max)),
            timestampMillis: UInt64(try reader.decimal(.timestamp, max: Int64.max)),
            op: UInt32(try reader.decimal(.op, max: Int64(UInt32.max))),
            attempts: values[.attempts] == nil ? 0 : Int(try reader.decimal(.attempts, max: Int64(Int32.max)))
        )
    }

    /// Reads an entry's field/value list as a Redis reply gives it: a multi-bulk of bulk strings. An entry that
    /// was deleted while pending comes back from XREADGROUP or XCLAIM with a null list: that is malformed too.
    public init(fields reply: RedisValue) throws(NotificationEntryError) {
        guard let elements = reply.array else {
            throw .malformed(reply == .null ? "the entry was deleted from the stream" : "expected a list of fields")
        }
        var fields: [[UInt8]] = []
        fields.reserveCapacity(elements.count)
        for element in elements {
            guard case .string(let bytes) = element else { throw .malformed("a field or value is not a string") }
            fields.append(bytes)
        }
        try self.init(fields: fields)
    }

    /// The field/value list that `init(fields:)` reads back, in the order of the table above, ready for
    /// `XADD <stream> * …`: what a retry re-adds, with ``attempts`` counted. `a` is written only when not 0, so an
    /// entry as the store script wrote it encodes to the same fields.
    public var encodedFields: [[UInt8]] {
        var fields: [[UInt8]] = []
        fields.reserveCapacity(2 * Field.allCases.count)
        func add(_ field: Field, _ value: [UInt8]) {
            fields.append(Array(field.rawValue.utf8))
            fields.append(value)
        }
        func decimal(_ value: UInt64) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.appendDecimal(value)
            return bytes
        }
        add(.user, Array(user.utf8))
        add(.device, Array(device.utf8))
        add(.provider, Array(provider.rawValue.utf8))
        add(.token, Array(token.utf8))
        add(.topic, Array(topic.utf8))
        add(.sandbox, [sandbox ? UInt8(ascii: "1") : UInt8(ascii: "0")])
        add(.notify, notifyJSON)
        add(.badge, decimal(UInt64(max(0, badge))))
        add(.seq, decimal(seq))
        add(.timestamp, decimal(timestampMillis))
        add(.op, decimal(UInt64(op)))
        if attempts > 0 { add(.attempts, decimal(UInt64(attempts))) }
        return fields
    }
}

/// Reads typed values out of an entry's fields, each error naming its field.
private struct Reader {
    let values: [NotificationEntry.Field: [UInt8]]

    func required(_ field: NotificationEntry.Field) throws(NotificationEntryError) -> [UInt8] {
        guard let value = values[field] else { throw .missingField(field.rawValue) }
        return value
    }

    func text(_ field: NotificationEntry.Field, nonEmpty: Bool) throws(NotificationEntryError) -> String {
        let bytes = try required(field)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .badField(field.rawValue, "expected UTF-8 text")
        }
        if nonEmpty && text.isEmpty { throw .badField(field.rawValue, "expected a non-empty string") }
        return text
    }

    func provider() throws(NotificationEntryError) -> PushProvider {
        let bytes = try required(.provider)
        guard let provider = PushProvider(rawValue: String(decoding: bytes, as: UTF8.self)) else {
            throw .badField(
                NotificationEntry.Field.provider.rawValue,
                "expected apns, fcm or webhook, got \(Self.quoted(bytes))")
        }
        return provider
    }

    func flag(_ field: NotificationEntry.Field) throws(NotificationEntryError) -> Bool {
        switch try required(field) {
        case [UInt8(ascii: "1")]: return true
        case [UInt8(ascii: "0")]: return false
        case let bytes: throw .badField(field.rawValue, "expected 1 or 0, got \(Self.quoted(bytes))")
        }
    }

    /// A decimal integer from 0 to `max`, digits only.
    func decimal(_ field: NotificationEntry.Field, max: Int64) throws(NotificationEntryError) -> Int64 {
        let bytes = try required(field)
        guard let number = Int64(decimal: bytes), number >= 0, number <= max,
            bytes.first != UInt8(ascii: "-")
        else {
            throw .badField(field.rawValue, "expected a decimal integer from 0 to \(max), got \(Self.quoted(bytes))")
        }
        return number
    }

    /// The value for an error message: quoted, cut at 40 bytes, invalid UTF-8 replaced.
    private static func quoted(_ bytes: [UInt8]) -> String {
        let shown = String(decoding: bytes.prefix(40), as: UTF8.self)
        return "\"\(shown)\"" + (bytes.count > 40 ? "…" : "")
    }
}
