/// A `POST /v1/bans` body (SPEC §8): `{"ip":…,"user":…,"device":…,"ttl":S,"reason":…}`, validated.
public struct BanRequest: Equatable, Sendable {
    /// The address range to ban, if any.
    public var ip: CIDR?
    /// The user to ban, if any.
    public var user: String?
    /// The device key to ban, if any.
    public var device: String?
    /// Seconds the ban lasts; nil (no `ttl`, or 0) for a ban that does not expire.
    public var ttl: Int?
    /// Why; empty if not given.
    public var reason: String

    /// The members a body may have.
    static let fields = ["ip", "user", "device", "ttl", "reason"]

    /// A request from its parts; at least one of `ip`, `user`, `device` should be set.
    public init(ip: CIDR? = nil, user: String? = nil, device: String? = nil, ttl: Int? = nil, reason: String = "") {
        self.ip = ip
        self.user = user
        self.device = device
        self.ttl = ttl
        self.reason = reason
    }

    /// Parses and validates a body; every problem is a 400 that names the field.
    public init(body: [UInt8]) throws(APIError) {
        let (json, members) = try APIError.objectBody(body)
        do {
            try BanFormatError.refuseUnknown(members, known: Self.fields)
            self.init(
                ip: try Ban.range(json["ip"]), user: try Ban.identifier(json["user"], "user"),
                device: try Ban.identifier(json["device"], "device"), reason: try Ban.reason(json["reason"]))
        } catch {
            throw .badRequest("\(error)")
        }
        guard ip != nil || user != nil || device != nil else {
            throw .badRequest("give at least one of ip, user, device")
        }
        if let value = json["ttl"], !value.isNull {
            guard let seconds = value.int64Value, seconds >= 0, seconds <= Int64(Int32.max) else {
                throw .badRequest("ttl must be a whole number of seconds from 0 (no expiry) to \(Int32.max)")
            }
            ttl = seconds == 0 ? nil : Int(seconds)
        }
    }

    /// The request as a `POST /v1/bans` body, members not set left out: `init(body:)` reads it back.
    public var json: [UInt8] {
        var writer = JSONWriter()
        writer.object {
            if let ip { $0.field("ip", ip.description) }
            if let user { $0.field("user", user) }
            if let device { $0.field("device", device) }
            if let ttl { $0.field("ttl", ttl) }
            if !reason.isEmpty { $0.field("reason", reason) }
        }
        return writer.bytes
    }

    /// The ban this request makes at `now` (Unix seconds), with the id the caller chose.
    public func ban(id: String, now: Int) -> Ban {
        Ban(id: id, ip: ip, user: user, device: device, reason: reason, expiresAt: ttl.map { now + $0 } ?? 0)
    }
}
