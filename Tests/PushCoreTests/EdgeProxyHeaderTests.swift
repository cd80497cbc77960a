import Testing

@testable import PushCore

/// A v2 header: signature, version 2 and `command`, `family`, the length, `block` (addresses), then `tlvs`.
private func v2(command: UInt8 = 0x1, family: UInt8, block: [UInt8], tlvs: [UInt8] = []) -> [UInt8] {
    let length = block.count + tlvs.count
    return ProxyHeader.v2Signature + [0x20 | command, family, UInt8(length >> 8), UInt8(length & 0xFF)] + block + tlvs
}

/// A TLV: type, 2-byte big-endian length, value.
private func tlv(_ type: UInt8, _ value: [UInt8]) -> [UInt8] {
    [type, UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
}

/// 203.0.113.7:56324 → 198.51.100.1:3101.
private let inetBlock: [UInt8] = [203, 0, 113, 7, 198, 51, 100, 1, 0xDC, 0x04, 0x0C, 0x1D]
/// [2001:db8::7]:443 → [2001:db8::1]:3101.
private let inet6Block: [UInt8] =
    [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [7]
    + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1] + [0x01, 0xBB, 0x0C, 0x1D]
/// TLVs as balancers send them: ALPN, AWS's VPC endpoint id, a NOOP, an empty one.
private let someTLVs = tlv(0x01, Array("h2".utf8)) + tlv(0xEA, [0x01] + Array("vpce-0123456789".utf8))
    + tlv(0x04, [0, 0, 0]) + tlv(0x05, [])

/// A complete header and what it should parse to.
struct ProxyFixture: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let source: String?
    let port: UInt16?
    var testDescription: String { name }

    init(_ name: String, _ bytes: [UInt8], _ source: String?, _ port: UInt16?) {
        self.name = name
        self.bytes = bytes
        self.source = source
        self.port = port
    }

    init(_ name: String, _ line: String, _ source: String?, _ port: UInt16?) {
        self.init(name, Array(line.utf8), source, port)
    }

    var expected: ProxyHeader.Result {
        .header(source: source.flatMap { IPAddress($0) }, port: port, length: bytes.count)
    }
}

private let longestV6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

private let validHeaders = [
    ProxyFixture("v1 TCP4", "PROXY TCP4 203.0.113.7 198.51.100.1 56324 3101\r\n", "203.0.113.7", 56324),
    ProxyFixture("v1 TCP6", "PROXY TCP6 2001:db8::7 2001:db8::1 443 3101\r\n", "2001:db8::7", 443),
    ProxyFixture("v1 TCP6 mapped", "PROXY TCP6 ::ffff:10.1.2.3 ::ffff:10.0.0.1 0 65535\r\n", "10.1.2.3", 0),
    ProxyFixture("v1 UNKNOWN", "PROXY UNKNOWN\r\n", nil, nil),
    ProxyFixture("v1 UNKNOWN with addresses", "PROXY UNKNOWN ::1 ::1 1 2\r\n", nil, nil),
    ProxyFixture("v1 longest line", "PROXY UNKNOWN \(longestV6) \(longestV6) 65535 65535\r\n", nil, nil),
    ProxyFixture("v1 longest TCP6", "PROXY TCP6 \(longestV6) \(longestV6) 65535 65535\r\n", longestV6, 65535),
    ProxyFixture("v2 INET", v2(family: 0x11, block: inetBlock), "203.0.113.7", 56324),
    ProxyFixture("v2 INET with TLVs", v2(family: 0x11, block: inetBlock, tlvs: someTLVs), "203.0.113.7", 56324),
    ProxyFixture("v2 INET6 with TLVs", v2(family: 0x21, block: inet6Block, tlvs: someTLVs), "2001:db8::7", 443),
    ProxyFixture("v2 LOCAL", v2(command: 0x0, family: 0x00, block: []), nil, nil),
    ProxyFixture("v2 LOCAL with addresses and TLVs", v2(command: 0x0, family: 0x11, block: inetBlock, tlvs: someTLVs),
        nil, nil),
    ProxyFixture("v2 UNSPEC", v2(family: 0x00, block: [], tlvs: someTLVs), nil, nil),
    ProxyFixture("v2 UNIX", v2(family: 0x31, block: [UInt8](repeating: 0x2F, count: 216)), nil, nil),
]

/// Bytes that are not a header, and what the reason says.
private let brokenHeaders: [(String, [UInt8], String)] = [
    ("plain protocol frame", [0, 0, 0, 16, 0, 16, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1], "does not start with a PROXY header"),
    ("HTTP request", Array("GET / HTTP/1.1\r\n\r\n".utf8), "does not start with a PROXY header"),
    ("TLS ClientHello", [0x16, 0x03, 0x01, 0x02, 0x00], "does not start with a PROXY header"),
    ("lower case", Array("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n".utf8), "does not start with a PROXY header"),
    ("PROXY without space", Array("PROXY\r\n".utf8), "does not start with a PROXY header"),
    ("v1 unknown protocol", Array("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n".utf8), "unknown protocol \"TCP5\""),
    ("v1 IPv6 in TCP4", Array("PROXY TCP4 ::1 ::1 1 2\r\n".utf8), "not IPv4"),
    ("v1 IPv4 in TCP6", Array("PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n".utf8), "not IPv6"),
    ("v1 bad destination", Array("PROXY TCP4 1.2.3.4 1.2.3 1 2\r\n".utf8), "not IPv4"),
    ("v1 name", Array("PROXY TCP4 example.com 1.2.3.4 1 2\r\n".utf8), "not IPv4"),
    ("v1 port too big", Array("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n".utf8), "a port"),
    ("v1 port sign", Array("PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n".utf8), "a port"),
    ("v1 missing port", Array("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n".utf8), "expected TCP4|TCP6"),
    ("v1 two spaces", Array("PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n".utf8), "expected TCP4|TCP6"),
    ("v1 trailing space", Array("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n".utf8), "expected TCP4|TCP6"),
    ("v1 empty", Array("PROXY \r\n".utf8), "expected TCP4|TCP6"),
    ("v1 LF alone", Array("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n".utf8), "LF without CR"),
    ("v1 CR alone", Array("PROXY TCP4 1.2.3.4\r1.2.3.4 1 2\r\n".utf8), "CR without LF"),
    ("v1 binary byte", Array("PROXY TCP4 1.2.3.4".utf8) + [0] + Array(" 1.2.3.4 1 2\r\n".utf8), "not printable"),
    ("v1 line too long", Array("PROXY UNKNOWN \(longestV6) \(longestV6) 65535 655355\r\n".utf8), "no CRLF within 107"),
    ("v1 no CRLF", Array("PROXY TCP4 ".utf8) + [UInt8](repeating: UInt8(ascii: "1"), count: 96), "no CRLF within 107"),
    ("v2 wrong signature", [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x55, 0x0A, 0x21, 0x11, 0, 0],
        "does not start with a PROXY header"),
    ("v2 version 1", ProxyHeader.v2Signature + [0x11, 0x11, 0, 12] + inetBlock, "unknown version 1"),
    ("v2 version 3", ProxyHeader.v2Signature + [0x31, 0x11, 0, 12] + inetBlock, "unknown version 3"),
    ("v2 command 2", ProxyHeader.v2Signature + [0x22, 0x11, 0, 12] + inetBlock, "unknown command 2"),
    ("v2 family 4", v2(family: 0x41, block: inetBlock), "unknown address family and transport 0x41"),
    ("v2 transport 3", v2(family: 0x13, block: inetBlock), "unknown address family and transport 0x13"),
    ("v2 UDP", v2(family: 0x12, block: inetBlock), "datagram"),
    ("v2 INET too short", v2(family: 0x11, block: Array(inetBlock.prefix(11))), "too few for the addresses"),
    ("v2 INET6 too short", v2(family: 0x21, block: inetBlock), "too few for the addresses"),
    ("v2 too long", ProxyHeader.v2Signature + [0x21, 0x11, 0x08, 0x01], "over the 2064 accepted"),
    ("v2 length 65535", ProxyHeader.v2Signature + [0x21, 0x11, 0xFF, 0xFF], "over the 2064 accepted"),
    ("v2 TLV past the end", v2(family: 0x11, block: inetBlock, tlvs: [0x01, 0x00, 0x05, 1, 2]), "TLV runs past"),
    ("v2 TLV cut in its length", v2(family: 0x11, block: inetBlock, tlvs: tlv(0x01, [1]) + [0x02, 0x00]),
        "TLV runs past"),
]

/// First bytes, and whether they already show there is no header (true) or may still become one (false).
private let earlyDecisions: [([UInt8], Bool)] = [
    (Array("G".utf8), true), (Array("PROX".utf8), false), (Array("PROXZ".utf8), true), ([0x0D, 0x0A, 0x0D], false),
    ([0x0D, 0x0A, 0x0A], true), (ProxyHeader.v2Signature + [0x11], true),
    (ProxyHeader.v2Signature + [0x21, 0x77], true), (ProxyHeader.v2Signature + [0x21], false), ([], false),
]

@Suite("Edge: PROXY protocol header")
struct EdgeProxyHeaderTests {
    /// A whole header parses to its source and its own length.
    @Test(arguments: validHeaders)
    func valid(_ fixture: ProxyFixture) {
        #expect(ProxyHeader.parse(fixture.bytes) == fixture.expected)
        #expect(fixture.bytes.count <= ProxyHeader.maxLength)
    }

    /// Every proper prefix asks for more; the whole header, however it was cut, gives the same answer.
    @Test(arguments: validHeaders)
    func splitAtEveryByte(_ fixture: ProxyFixture) {
        for cut in 0..<fixture.bytes.count {
            #expect(ProxyHeader.parse(Array(fixture.bytes[..<cut])) == .needMore, "cut at \(cut)")
        }
        #expect(ProxyHeader.parse(fixture.bytes) == fixture.expected)
    }

    /// The client's first bytes after the header are not part of it: `length` points at them, whatever they are
    /// (another header's bytes included).
    @Test(arguments: validHeaders)
    func trailingClientBytesPreserved(_ fixture: ProxyFixture) throws {
        let client = Frame(.auth, sequence: 1, text: #"{"mid":1}"#).encoded + Array("PROXY \r\n".utf8)
        let stream = fixture.bytes + client
        guard case .header(_, _, let length) = ProxyHeader.parse(stream) else {
            Issue.record("no header in \(fixture.name)")
            return
        }
        #expect(ProxyHeader.parse(stream) == fixture.expected)
        #expect(Array(stream[length...]) == client)
    }

    /// Garbage and broken headers are refused, with a reason that says what is wrong.
    @Test(arguments: brokenHeaders)
    func invalid(_ name: String, _ bytes: [UInt8], _ reason: String) {
        guard case .invalid(let text) = ProxyHeader.parse(bytes + Array("more".utf8)) else {
            Issue.record("\(name) was not refused")
            return
        }
        #expect(text.contains(reason), "\(name): \(text)")
    }

    /// A client without a balancer in front is refused at its first bytes, not after its handshake timeout.
    @Test(arguments: earlyDecisions)
    func decidedEarly(_ bytes: [UInt8], _ refused: Bool) {
        let result = ProxyHeader.parse(bytes)
        if refused {
            guard case .invalid = result else {
                Issue.record("\(bytes) gave \(result)")
                return
            }
        } else {
            #expect(result == .needMore)
        }
    }

    /// A v1 line is refused once 107 bytes hold no CRLF; before that, it may still end.
    @Test func v1LengthBound() {
        let start = Array("PROXY UNKNOWN ".utf8)
        let filled = { (count: Int) in start + [UInt8](repeating: UInt8(ascii: "x"), count: count) }
        let longest = filled(ProxyHeader.maxV1Length - start.count - 2) + [0x0D, 0x0A]
        #expect(ProxyHeader.parse(longest) == .header(source: nil, port: nil, length: 107))
        #expect(ProxyHeader.parse(Array(longest.dropLast())) == .needMore)
        let over = filled(ProxyHeader.maxV1Length - start.count - 1)
        #expect(ProxyHeader.parse(over) == .needMore)
        // 107 bytes: the LF could only be the 108th.
        #expect(ProxyHeader.parse(over + [0x0D]) == .invalid("PROXY v1: no CRLF within 107 bytes"))
        #expect(ProxyHeader.parse(over + [0x0D, 0x0A]) == .invalid("PROXY v1: no CRLF within 107 bytes"))
    }

    /// The largest v2 header accepted asks for more until complete; one byte longer is refused from its length.
    @Test func v2LengthBound() {
        let payload = ProxyHeader.maxV2Length - 16 - inetBlock.count - 3
        let largest = v2(family: 0x11, block: inetBlock, tlvs: tlv(0xEE, [UInt8](repeating: 7, count: payload)))
        #expect(largest.count == ProxyHeader.maxV2Length)
        #expect(ProxyHeader.parse(Array(largest.dropLast())) == .needMore)
        #expect(ProxyHeader.parse(largest) == .header(source: IPAddress("203.0.113.7"), port: 56324, length: 2064))
        let tooLarge = v2(family: 0x11, block: inetBlock, tlvs: tlv(0xEE, [UInt8](repeating: 7, count: payload + 1)))
        guard case .invalid = ProxyHeader.parse(Array(tooLarge.prefix(16))) else {
            Issue.record("a header over the bound was not refused from its first 16 bytes")
            return
        }
    }
}
