/// A `POST /v1/push` body (SPEC §3), validated.
public struct PushRequest: Equatable, Sendable {
    /// Where a push goes.
    public enum Target: Equatable, Sendable {
        /// Every device of each user.
        case users([String])
        /// Single devices, each `{"user":…,"key":…}`.
        case devices([Device])
        /// Every member of a topic.
        case topic(String)
        /// Every connection.
        case all
    }

    public struct Device: Equatable, Sendable {
        public var user: String
        public var key: String
        public init(user: String, key: String) {
            self.user = user
            self.key = key
        }
    }

    public var target: Target
    /// The application operation (≥ 1000) the frame carries.
    public var operation: Operation
    /// The payload bytes delivered unchanged: the JSON text of `payload` as the backend wrote it, or the
    /// decoded `payload_b64`.
    public var payload: [UInt8]
    /// Whether the payload came as JSON (`payload`) rather than bytes (`payload_b64`).
    public var payloadIsJSON: Bool
    /// `store` (default true): keep it in the inbox with a sequence number.
    public var store: Bool
    /// `ttl` in seconds for a stored message; nil means `inbox.ttl`.
    public var ttl: Int?
    /// `id`: the idempotency key.
    public var id: String?
    /// `notify` (SPEC §10): the object as the backend wrote it, for the notifiers; nil without one.
    public var notify: [UInt8]?
    /// `notify.always`: online devices are notified too.
    public var notifyAlways = false

    /// Most users or devices in one push.
    public static let maxRecipients = 1_000

    /// Parses and validates a body; every problem is a 400 naming the field.
    public init(body: [UInt8]) throws(APIError) {
        let members: [String: JSONParser.Member]
        do {
            members = try JSONParser.parseObjectWithRanges(body)
        } catch {
            throw .badRequest("body is not a JSON object: \(error)")
        }
        try self.init(members: members, body: body)
    }

    /// Parses one push from an object's members, whose ranges index into `body`.
    init(members: [String: JSONParser.Member], body: [UInt8]) throws(APIError) {
        guard let to = members["to"]?.value else { throw .badRequest("to is required") }
        target = try Self.target(to)

        guard let opValue = members["op"]?.value else { throw .badRequest("op is required") }
        guard let op = opValue.int64Value, op >= Int64(Operation.firstApplication), op <= Int64(UInt32.max) else {
            throw .badRequest("op must be an integer application operation, 1000 or above")
        }
        operation = Operation(UInt32(op))

        switch (members["payload"], members["payload_b64"]) {
        case (let json?, nil):
            payload = Array(body[json.range])
            payloadIsJSON = true
        case (nil, let encoded?):
            guard let text = encoded.value.stringValue, let bytes = Base64.decode(text) else {
                throw .badRequest("payload_b64 must be a base64 string")
            }
            payload = bytes
            payloadIsJSON = false
        case (nil, nil): throw .badRequest("payload or payload_b64 is required")
        case (_?, _?): throw .badRequest("give payload or payload_b64, not both")
        }

        if let value = members["store"]?.value, !value.isNull {
            guard let flag = value.boolValue else { throw .badRequest("store must be true or false") }
            store = flag
        } else {
            store = true
        }
        if let value = members["ttl"]?.value, !value.isNull {
            guard let seconds = value.int64Value, seconds > 0, seconds <= Int64(Int32.max) else {
                throw .badRequest("ttl must be a positive number of seconds")
            }
            ttl = Int(seconds)
        }
        if let value = members["id"]?.value, !value.isNull {
            guard let text = value.identifier, !text.isEmpty, text.utf8.count <= 256 else {
                throw .badRequest("id must be a non-empty string of at most 256 bytes")
            }
            id = text
        }
        if let member = members["notify"], !member.value.isNull {
            notifyAlways = try Self.checkNotify(member.value)
            notify = Array(body[member.range])
        }
        if case .topic = target, store {
            // Topic and broadcast messages are at-most-once (SPEC §2): there is no inbox to keep them in.
            store = false
        } else if case .all = target {
            store = false
        }
        if notify != nil {
            guard store else {
                throw .badRequest("notify needs a stored push to users or devices (store true): nothing to notify from")
            }
        }
    }

    /// Checks a `notify` object's fields; returns `always`.
    private static func checkNotify(_ value: JSONValue) throws(APIError) -> Bool {
        guard case .object(let fields) = value else { throw .badRequest("notify must be an object") }
        var always = false
        for (name, field) in fields {
            switch name {
            case "title", "body", "sound", "collapse_id":
                guard field.stringValue != nil else { throw .badRequest("notify.\(name) must be a string") }
                if name == "collapse_id", let text = field.stringValue, text.utf8.count > 64 {
                    throw .badRequest("notify.collapse_id must be at most 64 bytes (APNs' limit)")
                }
            case "priority":
                guard let text = field.stringValue, text == "high" || text == "normal" else {
                    throw .badRequest("notify.priority must be \"high\" or \"normal\"")
                }
            case "data":
                guard case .object = field else { throw .badRequest("notify.data must be an object") }
            case "always":
                guard let flag = field.boolValue else { throw .badRequest("notify.always must be true or false") }
                always = flag
            default:
                throw .badRequest(
                    "notify has an unknown field \"\(name)\"; use title, body, sound, collapse_id, priority, data, always")
            }
        }
        return always
    }

    /// The hash recorded with the push's idempotency key: the same id with another target, op, ttl or payload is
    /// a conflict. Built by hand (ids hold no control characters, so 0x1F separates them unambiguously): a
    /// `String(describing:)` of the target would go through reflection on every stored push.
    public var bodyHash: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + payload.count)
        switch target {
        case .users(let users):
            bytes.append(UInt8(ascii: "u"))
            for user in users { bytes.append(0x1F); bytes.append(contentsOf: user.utf8) }
        case .devices(let devices):
            bytes.append(UInt8(ascii: "d"))
            for device in devices {
                bytes.append(0x1F); bytes.append(contentsOf: device.user.utf8)
                bytes.append(0x1E); bytes.append(contentsOf: device.key.utf8)
            }
        case .topic(let topic):
            bytes.append(UInt8(ascii: "t")); bytes.append(0x1F); bytes.append(contentsOf: topic.utf8)
        case .all:
            bytes.append(UInt8(ascii: "a"))
        }
        bytes.append(0x1D)
        bytes.appendDecimal(UInt64(operation.rawValue))
        bytes.append(0x1D)
        bytes.appendDecimal(ttl ?? 0)
        bytes.append(0x1D)
        bytes.append(contentsOf: payload)
        if let notify {
            // Only with one: the hash of a push without notify is the one older gateways recorded.
            bytes.append(0x1D)
            bytes.append(contentsOf: notify)
        }
        return PushCore.bodyHash(bytes)
    }

    private static func target(_ to: JSONValue) throws(APIError) -> Target {
        guard case .object(let fields) = to, fields.count == 1 else {
            throw .badRequest("to must be an object with exactly one of users, devices, topic, all")
        }
        let (name, value) = fields[0]
        switch name {
        case "users":
            guard let list = value.arrayValue, !list.isEmpty, list.count <= maxRecipients else {
                throw .badRequest("to.users must be a non-empty array of at most \(maxRecipients) user ids")
            }
            return .users(try list.map { (user) throws(APIError) -> String in
                guard let id = user.identifier, AuthRequest.isValidIdentifier(id) else {
                    throw .badRequest("to.users must hold user ids (strings or integers, no control characters)")
                }
                return id
            })
        case "devices":
            guard let list = value.arrayValue, !list.isEmpty, list.count <= maxRecipients else {
                throw .badRequest("to.devices must be a non-empty array of at most \(maxRecipients) devices")
            }
            return .devices(try list.map { (device) throws(APIError) -> Device in
                guard let user = device["user"]?.identifier, AuthRequest.isValidIdentifier(user),
                    let key = device["key"]?.identifier, AuthRequest.isValidIdentifier(key)
                else {
                    throw .badRequest("to.devices must hold objects {\"user\":…,\"key\":…}")
                }
                return Device(user: user, key: key)
            })
        case "topic":
            guard let topic = value.stringValue, AuthRequest.isValidIdentifier(topic) else {
                throw .badRequest("to.topic must be a non-empty string without control characters")
            }
            return .topic(topic)
        case "all":
            guard value.boolValue == true else { throw .badRequest("to.all must be true") }
            return .all
        default:
            throw .badRequest("to has an unknown target \"\(name)\"; use users, devices, topic or all")
        }
    }
}
