#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address, as a client's address is compared, counted and banned.
///
/// Stored as 128 bits, an IPv4 address as its IPv4-mapped IPv6 form `::ffff:a.b.c.d`: a dual-stack socket reports
/// IPv4 clients that way, and the same phone must hit the same rate limit and ban however it is reported. So
/// `IPAddress("::ffff:203.0.113.7") == IPAddress("203.0.113.7")`, and both print as `203.0.113.7`.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The first 64 bits, network order read as a big-endian number.
    public let high: UInt64
    /// The last 64 bits.
    public let low: UInt64

    /// The address of these 128 bits (an IPv4 address when they are `::ffff:a.b.c.d`).
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The IPv4 address whose 32 bits, read big-endian, are `v4` (`0xCB00_7107` is `203.0.113.7`).
    public init(v4: UInt32) {
        self.init(high: 0, low: Self.mappedPrefix | UInt64(v4))
    }

    /// An address in its usual text: `203.0.113.7`, `2001:db8::1`, `::ffff:203.0.113.7`; nil for anything else
    /// (names, zone ids such as `fe80::1%eth0`, brackets, leading zeros in IPv4, spaces).
    public init?(_ text: some StringProtocol) {
        let text = String(text)
        let isV6 = text.utf8.contains(UInt8(ascii: ":"))
        var raw = (UInt64(0), UInt64(0))  // room for an in6_addr; inet_pton writes 4 or 16 bytes
        let parsed = withUnsafeMutableBytes(of: &raw) { inet_pton(isV6 ? AF_INET6 : AF_INET, text, $0.baseAddress) }
        guard parsed == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &raw) { Array($0.prefix(isV6 ? 16 : 4)) }
        self.init(bytes: bytes)
    }

    /// The address in 4 bytes (IPv4) or 16 bytes (IPv6) in network order, as in a `sockaddr` or a PROXY v2
    /// header; nil for any other count.
    public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        var value = (UInt64(0), UInt64(0))
        var index = 0
        switch bytes.count {
        case 4:
            for byte in bytes { value.1 = value.1 << 8 | UInt64(byte) }
            self.init(v4: UInt32(truncatingIfNeeded: value.1))
        case 16:
            for byte in bytes {
                if index < 8 { value.0 = value.0 << 8 | UInt64(byte) } else { value.1 = value.1 << 8 | UInt64(byte) }
                index += 1
            }
            self.init(high: value.0, low: value.1)
        default:
            return nil
        }
    }

    /// `::ffff:0:0/96`, the prefix of IPv4-mapped addresses, in the low half.
    static let mappedPrefix: UInt64 = 0x0000_FFFF_0000_0000

    /// Whether this is an IPv4 address (given as such or IPv4-mapped).
    public var isIPv4: Bool { high == 0 && low & 0xFFFF_FFFF_0000_0000 == Self.mappedPrefix }

    /// The 32 bits of an IPv4 address, nil for IPv6.
    public var v4: UInt32? { isIPv4 ? UInt32(truncatingIfNeeded: low) : nil }

    /// Whether this is a loopback address: `127.0.0.0/8` or `::1`. Loopback is never auto-banned.
    public var isLoopback: Bool {
        if let v4 { return v4 >> 24 == 127 }
        return high == 0 && low == 1
    }

    /// 4 bytes for IPv4, 16 for IPv6, in network order.
    public var bytes: [UInt8] {
        if let v4 { return (0..<4).map { UInt8(truncatingIfNeeded: v4 >> (24 - 8 * $0)) } }
        return (0..<16).map { UInt8(truncatingIfNeeded: ($0 < 8 ? high : low) >> (56 - 8 * ($0 % 8))) }
    }

    /// `203.0.113.7`, or IPv6 as `inet_ntop` writes it (`2001:db8::1`), which `init?(_:)` reads back.
    public var description: String {
        if let v4 {
            var text: [UInt8] = []
            text.reserveCapacity(15)
            for shift in stride(from: 24, through: 0, by: -8) {
                if shift != 24 { text.append(UInt8(ascii: ".")) }
                text.appendDecimal(UInt64(v4 >> UInt32(shift) & 0xFF))
            }
            return String(decoding: text, as: UTF8.self)
        }
        var raw = (high.bigEndian, low.bigEndian)
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = withUnsafeBytes(of: &raw) { inet_ntop(AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
        guard written != nil else { return "?" }  // only with a buffer too small, which INET6_ADDRSTRLEN is not
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
