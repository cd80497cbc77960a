/// The bans in force on a node, indexed for the two questions the gateway asks: at accept, is this address banned
/// (`bansAddress`), and at AUTH, is this session (`bansSession`).
///
/// Each ban sits in one index: single addresses in a dictionary (an automatic ban is one address, and a flood
/// makes many), ranges in a list scanned in order (an operator writes few), bans naming a user under the user,
/// and bans naming a device but no user under the device. So a query costs a few dictionary look-ups and a scan
/// of the ranges, never of every ban. Time is Unix seconds given by the caller; an expired ban matches nothing
/// even before `removeExpired` drops it.
public struct BanList: Sendable {
    private var byID: [String: Ban] = [:]
    /// Address-only bans of one address.
    private var addresses: [IPAddress: [Ban]] = [:]
    /// Address-only bans of a range.
    private var ranges: [Ban] = []
    /// Bans that name a user (alone or with an address or device).
    private var byUser: [String: [Ban]] = [:]
    /// Bans that name a device and no user.
    private var byDevice: [String: [Ban]] = [:]
    /// Bans that name an address (alone or with a user or device): while there are none, nobody needs to look
    /// up a connection's address.
    private var naming = 0

    /// A list holding `bans`; a later ban with the same id replaces an earlier one.
    public init(_ bans: [Ban] = []) {
        for ban in bans { insert(ban) }
    }

    /// Bans held, expired ones included until `removeExpired`.
    public var count: Int { byID.count }

    /// Whether no ban is held.
    public var isEmpty: Bool { byID.isEmpty }

    /// Whether some ban is on addresses only (closes connections at accept).
    public var hasAddressBans: Bool { !addresses.isEmpty || !ranges.isEmpty }

    /// Whether some ban names an address, so that a session's address matters.
    public var namesAddresses: Bool { naming > 0 }

    /// Every ban, by id: what `GET /v1/bans` and the admin socket's `bans` list.
    public var bans: [Ban] { byID.values.sorted { $0.id < $1.id } }

    /// The ban with this id.
    public subscript(id: String) -> Ban? { byID[id] }

    /// Adds a ban, replacing any with the same id.
    public mutating func insert(_ ban: Ban) {
        remove(id: ban.id)
        byID[ban.id] = ban
        if ban.ip != nil { naming += 1 }
        if ban.isAddressOnly, let ip = ban.ip {
            if ip.isSingleAddress { addresses[ip.network, default: []].append(ban) } else { ranges.append(ban) }
        } else if let user = ban.user {
            byUser[user, default: []].append(ban)
        } else if let device = ban.device {
            byDevice[device, default: []].append(ban)
        }
    }

    /// Lifts a ban; returns it, or nil when there was none with this id.
    @discardableResult
    public mutating func remove(id: String) -> Ban? {
        guard let ban = byID.removeValue(forKey: id) else { return nil }
        if ban.ip != nil { naming -= 1 }
        if ban.isAddressOnly, let ip = ban.ip {
            if ip.isSingleAddress {
                Self.remove(id, from: &addresses, at: ip.network)
            } else {
                ranges.removeAll { $0.id == id }
            }
        } else if let user = ban.user {
            Self.remove(id, from: &byUser, at: user)
        } else if let device = ban.device {
            Self.remove(id, from: &byDevice, at: device)
        }
        return ban
    }

    /// Drops the bans that have ended at `now` and returns them (to log).
    public mutating func removeExpired(now: Int) -> [Ban] {
        let expired = byID.values.filter { $0.isExpired(now: now) }.sorted { $0.id < $1.id }
        for ban in expired { remove(id: ban.id) }
        return expired
    }

    /// The ban that closes a connection from `ip` at accept: an address-only ban in force that covers it. Bans
    /// naming a user or device wait for AUTH, when the user is known.
    public func bansAddress(_ ip: IPAddress, now: Int) -> Ban? {
        if let ban = addresses[ip]?.first(where: { !$0.isExpired(now: now) }) { return ban }
        return ranges.first { !$0.isExpired(now: now) && $0.ip!.contains(ip) }
    }

    /// The ban that refuses a session at AUTH (or a register, or an open connection when a ban is added): any ban
    /// in force that matches the address, the user and the device (`Ban.matches`).
    public func bansSession(ip: IPAddress, user: String, device: String?, now: Int) -> Ban? {
        if let ban = bansAddress(ip, now: now) { return ban }
        let matches = { (ban: Ban) in !ban.isExpired(now: now) && ban.matches(ip: ip, user: user, device: device) }
        if let ban = byUser[user]?.first(where: matches) { return ban }
        if let device, let ban = byDevice[device]?.first(where: matches) { return ban }
        return nil
    }

    /// The ban that refuses `POST /v1/register` for `user` on `device`: a ban in force on the user, the device or
    /// both that names no address. The caller of register is a backend, not the device, so its address says
    /// nothing about the device's: bans naming an address are applied at accept and AUTH only.
    public func bansIdentity(user: String, device: String?, now: Int) -> Ban? {
        // With no address in the ban, the address given to `matches` is never looked at.
        let any = IPAddress(high: 0, low: 0)
        let anywhere = { (ban: Ban) in
            ban.ip == nil && !ban.isExpired(now: now) && ban.matches(ip: any, user: user, device: device)
        }
        if let ban = byUser[user]?.first(where: anywhere) { return ban }
        if let device, let ban = byDevice[device]?.first(where: anywhere) { return ban }
        return nil
    }

    /// `{"bans":[…]}`, the answer of `GET /v1/bans`: the bans in force at `now`, by id.
    public func json(now: Int) -> [UInt8] {
        var writer = JSONWriter()
        writer.object {
            $0.key("bans")
            $0.array { writer in
                for ban in bans where !ban.isExpired(now: now) { ban.write(to: &writer) }
            }
        }
        return writer.bytes
    }

    private static func remove<Key: Hashable>(_ id: String, from index: inout [Key: [Ban]], at key: Key) {
        index[key]?.removeAll { $0.id == id }
        if index[key]?.isEmpty == true { index[key] = nil }
    }
}
