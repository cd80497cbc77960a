/// A ban (SPEC §8): an address range, a user, a device, or a combination, with why and until when.
///
/// A ban matches when every field it sets matches: `ip` alone bans the range, `user` alone the user, `device`
/// alone the device key (of any user); `ip` and `user` together ban that user only from that range, so an office
/// behind one NAT is not banned for one abuser. `user` and `device` together ban that user's device, and `ip` and
/// `device` that device from that range: the same rule.
public struct Ban: Equatable, Sendable {
    /// The ban's id, for `DELETE /v1/bans/{id}` and `unban <id>`.
    public var id: String
    /// The address range banned, nil when any.
    public var ip: CIDR?
    /// The user banned, nil when any.
    public var user: String?
    /// The device key banned, nil when any.
    public var device: String?
    /// Why, as the operator wrote it; may be empty.
    public var reason: String
    /// When the ban ends, in Unix seconds; 0 for never.
    public var expiresAt: Int

    /// A ban; at least one of `ip`, `user`, `device` should be set (`BanRequest` makes sure of it).
    public init(
        id: String, ip: CIDR? = nil, user: String? = nil, device: String? = nil, reason: String = "",
        expiresAt: Int = 0
    ) {
        self.id = id
        self.ip = ip
        self.user = user
        self.device = device
        self.reason = reason
        self.expiresAt = expiresAt
    }

    /// Longest `reason` accepted, in bytes.
    public static let maxReasonLength = 512

    /// Whether the ban has ended at `now` (Unix seconds).
    public func isExpired(now: Int) -> Bool { expiresAt != 0 && now >= expiresAt }

    /// Whether this ban is on addresses only, so that it closes connections at accept.
    public var isAddressOnly: Bool { ip != nil && user == nil && device == nil }

    /// Whether the ban covers a session from `ip` of `user` on `device` (nil: not known yet, matches no device
    /// ban). Expiry is not checked here.
    public func matches(ip address: IPAddress, user: String?, device: String?) -> Bool {
        if let ip, !ip.contains(address) { return false }
        if let banned = self.user, banned != user { return false }
        if let banned = self.device, banned != device { return false }
        return ip != nil || self.user != nil || self.device != nil
    }

    /// A new ban id: 16 hex digits from `generator`.
    public static func newID<Generator: RandomNumberGenerator>(using generator: inout Generator) -> String {
        let digits = String(generator.next() as UInt64, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

// MARK: - JSON

extension Ban {
    /// `{"id":…,"ip":…,"user":…,"device":…,"reason":…,"expires_at":…}`, fields not set as null: the shape
    /// of `GET /v1/bans` and of a ban kept in Redis.
    public func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("id", id)
            $0.key("ip")
            if let ip { $0.value(ip.description) } else { $0.null() }
            $0.key("user")
            if let user { $0.value(user) } else { $0.null() }
            $0.key("device")
            if let device { $0.value(device) } else { $0.null() }
            $0.field("reason", reason)
            $0.field("expires_at", expiresAt)
        }
    }

    /// The ban as a JSON object.
    public var json: [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }

    /// Reads a ban as `write(to:)` writes it (null or missing fields are not set).
    ///
    /// - Throws: `BanFormatError` naming the field at fault.
    public init(json: JSONValue) throws(BanFormatError) {
        guard case .object(let members) = json else { throw BanFormatError("a ban must be a JSON object") }
        try BanFormatError.refuseUnknown(members, known: ["id", "ip", "user", "device", "reason", "expires_at"])
        guard let id = json["id"]?.stringValue, !id.isEmpty, AuthRequest.isValidIdentifier(id) else {
            throw BanFormatError("id must be a non-empty string")
        }
        self.init(id: id)
        ip = try Self.range(json["ip"])
        user = try Self.identifier(json["user"], "user")
        device = try Self.identifier(json["device"], "device")
        reason = try Self.reason(json["reason"])
        if let value = json["expires_at"], !value.isNull {
            guard let seconds = value.int64Value, seconds >= 0 else {
                throw BanFormatError("expires_at must be Unix seconds, or 0 for never")
            }
            expiresAt = Int(seconds)
        }
        guard ip != nil || user != nil || device != nil else {
            throw BanFormatError("a ban needs at least one of ip, user, device")
        }
    }

    /// Parses a JSON document holding one ban.
    public init(json bytes: [UInt8]) throws(BanFormatError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw BanFormatError("not JSON: \(error)")
        }
        try self.init(json: value)
    }

    static func range(_ value: JSONValue?) throws(BanFormatError) -> CIDR? {
        guard let value, !value.isNull else { return nil }
        guard let text = value.stringValue else {
            throw BanFormatError("ip must be an address or range as a string (\"203.0.113.0/24\")")
        }
        do {
            return try CIDR(text)
        } catch {
            throw BanFormatError("ip: \(error)")
        }
    }

    static func identifier(_ value: JSONValue?, _ name: String) throws(BanFormatError) -> String? {
        guard let value, !value.isNull else { return nil }
        guard let text = value.identifier, AuthRequest.isValidIdentifier(text) else {
            throw BanFormatError(
                "\(name) must be a string or integer of 1 to \(AuthRequest.maxFieldLength) bytes without control "
                    + "characters")
        }
        return text
    }

    static func reason(_ value: JSONValue?) throws(BanFormatError) -> String {
        guard let value, !value.isNull else { return "" }
        guard let text = value.stringValue, text.utf8.count <= maxReasonLength,
            !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F })
        else {
            throw BanFormatError(
                "reason must be a string of at most \(maxReasonLength) bytes without control characters")
        }
        return text
    }
}
