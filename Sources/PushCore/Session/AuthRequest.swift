/// The body of an AUTH frame (SPEC §2), goim's fields plus pushgw's `token` and `last_seq`.
public struct AuthRequest: Equatable, Sendable {
    /// `mid`: the user id, given as an integer or a string.
    public var user: String
    /// `key`: the device key; the gateway makes one up when absent.
    public var key: String?
    /// `room_id`: goim's `type://room`.
    public var room: String?
    /// `platform`: ios, android, web, …
    public var platform: String
    /// `accepts`: application operations this connection receives; empty accepts all.
    public var accepts: [UInt32]
    /// `token`: the signed device token (checked when `auth.required`).
    public var token: String?
    /// `last_seq`: the last stored message this device has; what follows is replayed after AUTH_REPLY.
    public var lastSeq: UInt64?

    /// Longest user id, device key, room or platform accepted, in bytes.
    public static let maxFieldLength = 256
    /// Most operations in `accepts`.
    public static let maxAccepts = 64

    public init(
        user: String, key: String? = nil, room: String? = nil, platform: String = "", accepts: [UInt32] = [],
        token: String? = nil, lastSeq: UInt64? = nil
    ) {
        self.user = user
        self.key = key
        self.room = room
        self.platform = platform
        self.accepts = accepts
        self.token = token
        self.lastSeq = lastSeq
    }

    /// Reads an AUTH body; every problem is a fatal `bad_auth` naming the field.
    public init(body: [UInt8]) throws(ProtocolError) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(body)
        } catch {
            throw .badAuth("AUTH body is not JSON: \(error)")
        }
        guard case .object = json else { throw .badAuth("AUTH body must be a JSON object") }
        guard let mid = json["mid"], let user = mid.identifier, Self.isValidIdentifier(user) else {
            throw .badAuth("mid must be an integer or a non-empty string of at most \(Self.maxFieldLength) bytes without control characters")
        }
        self.init(user: user)
        key = try Self.optionalString(json, "key")
        if key?.isEmpty == true { key = nil }
        if let key, !Self.isValidIdentifier(key) { throw .badAuth("key must not hold control characters") }
        room = try Self.optionalString(json, "room_id")
        if room?.isEmpty == true { room = nil }
        if let room, !Self.isValidIdentifier(room) { throw .badAuth("room_id must not hold control characters") }
        platform = try Self.optionalString(json, "platform") ?? ""
        if !platform.isEmpty, !Self.isValidIdentifier(platform) {
            throw .badAuth("platform must not hold control characters")
        }
        token = try Self.optionalString(json, "token", maxLength: 4096)
        if let accepts = json["accepts"], !accepts.isNull {
            guard let list = accepts.arrayValue, list.count <= Self.maxAccepts else {
                throw .badAuth("accepts must be an array of at most \(Self.maxAccepts) operations")
            }
            self.accepts = try list.map { (value) throws(ProtocolError) -> UInt32 in
                guard let number = value.int64Value, let op = UInt32(exactly: number) else {
                    throw .badAuth("accepts must hold operation numbers")
                }
                return op
            }
        }
        if let last = json["last_seq"], !last.isNull {
            guard let number = last.int64Value, number >= 0 else {
                throw .badAuth("last_seq must be a non-negative integer")
            }
            lastSeq = UInt64(number)
        }
    }

    /// Whether `text` can name a user or device: non-empty, at most `maxFieldLength` bytes, no control
    /// characters (a newline would break the node channel's message format).
    public static func isValidIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= maxFieldLength && !text.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    private static func optionalString(
        _ json: JSONValue, _ name: String, maxLength: Int = maxFieldLength
    ) throws(ProtocolError) -> String? {
        guard let value = json[name], !value.isNull else { return nil }
        guard let text = value.identifier else { throw .badAuth("\(name) must be a string") }
        return try checkedLength(text, name, maxLength: maxLength)
    }

    private static func checkedLength(
        _ text: String, _ name: String, maxLength: Int = maxFieldLength
    ) throws(ProtocolError) -> String {
        guard text.utf8.count <= maxLength else { throw .badAuth("\(name) is longer than \(maxLength) bytes") }
        return text
    }
}
