/// An address range, `203.0.113.0/24` or `2001:db8::/32`; a bare address is the range of itself (/32, /128).
///
/// IPv4 ranges are kept as their IPv4-mapped IPv6 range (`/24` is `::ffff:203.0.113.0/120`), like `IPAddress`, so
/// `203.0.113.0/24` contains `::ffff:203.0.113.7`. An IPv6 range that covers `::ffff:0:0/96`, such as `::/0`,
/// contains IPv4 addresses too, as it would on a dual-stack socket.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the range (its host bits are zero).
    public let network: IPAddress
    /// The prefix over all 128 bits: 96 + n for an IPv4 `/n`.
    private let bits: UInt8

    /// The range of `address` alone: `/32` for IPv4, `/128` for IPv6.
    public init(_ address: IPAddress) {
        network = address
        bits = 128
    }

    /// The range of the first `prefixLength` bits of `network`, counted in its own family (0 to 32 for IPv4,
    /// IPv4-mapped included; 0 to 128 for IPv6).
    ///
    /// - Throws: `CIDRError` for a prefix out of range, or host bits set after it (`203.0.113.7/24` is more
    ///   likely a typo than a wish to ban 256 addresses).
    public init(network: IPAddress, prefixLength: Int) throws(CIDRError) {
        try self.init(network: network, prefixLength: prefixLength, isIPv4: network.isIPv4, text: nil)
    }

    /// Reads `203.0.113.0/24`, `2001:db8::/32`, `203.0.113.7` (as /32) or `::1` (as /128). The prefix counts in
    /// the family the address is written in: `::ffff:10.0.0.0/104` is `10.0.0.0/8`.
    ///
    /// - Throws: `CIDRError` saying what is wrong: not an address, a bad prefix, host bits set.
    public init(_ text: some StringProtocol) throws(CIDRError) {
        guard let slash = text.firstIndex(of: "/") else {
            guard let address = IPAddress(text) else { throw CIDRError(String(text), .notAnAddress) }
            self.init(address)
            return
        }
        let host = text[..<slash]
        guard let address = IPAddress(host) else { throw CIDRError(String(text), .notAnAddress) }
        let isIPv4 = !host.contains(":")
        let digits = text[slash...].dropFirst()
        guard !digits.isEmpty, digits.count <= 3, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            digits.count == 1 || digits.first != "0", let length = Int(digits)
        else { throw CIDRError(String(text), .prefixRange(isIPv4 ? 32 : 128)) }
        try self.init(network: address, prefixLength: length, isIPv4: isIPv4, text: String(text))
    }

    private init(network: IPAddress, prefixLength: Int, isIPv4: Bool, text: String?) throws(CIDRError) {
        let text = text ?? "\(network)/\(prefixLength)"
        let limit = isIPv4 ? 32 : 128
        guard (0...limit).contains(prefixLength) else { throw CIDRError(text, .prefixRange(limit)) }
        bits = UInt8(prefixLength + (isIPv4 ? 96 : 0))
        let mask = Self.mask(bits)
        self.network = IPAddress(high: network.high & mask.high, low: network.low & mask.low)
        guard self.network == network else { throw CIDRError(text, .hostBits(description)) }
    }

    /// Whether this range is IPv4 (`a.b.c.d/n`).
    public var isIPv4: Bool { network.isIPv4 && bits >= 96 }

    /// The prefix length as written: 0 to 32 for IPv4, 0 to 128 for IPv6.
    public var prefixLength: Int { isIPv4 ? Int(bits) - 96 : Int(bits) }

    /// Whether `address` lies in the range.
    public func contains(_ address: IPAddress) -> Bool {
        let mask = Self.mask(bits)
        return address.high & mask.high == network.high && address.low & mask.low == network.low
    }

    /// Whether the range is one address (/32, /128).
    public var isSingleAddress: Bool { bits == 128 }

    /// `203.0.113.0/24`, `2001:db8::/32`, or a single address bare (`203.0.113.7`, `::1`), as a ban is shown;
    /// `init(_:)` reads it back to the same range.
    public var description: String {
        if isSingleAddress { return network.description }
        return isIPv4 ? "\(network)/\(prefixLength)" : "\(network.v6Description)/\(prefixLength)"
    }

    /// The mask of the first `bits` of 128. Shifts by 64 or more give 0 in Swift, which the edges rely on.
    private static func mask(_ bits: UInt8) -> (high: UInt64, low: UInt64) {
        let high: UInt64 = bits >= 64 ? ~0 : ~0 << (64 - bits)
        let low: UInt64 = bits <= 64 ? 0 : ~0 << (128 - bits)
        return (high, low)
    }
}

extension IPAddress {
    /// The IPv6 text even for an IPv4-mapped address (`::ffff:10.0.0.0`), for IPv6 ranges that start there.
    var v6Description: String {
        guard isIPv4 else { return description }
        return "::ffff:" + description
    }
}
