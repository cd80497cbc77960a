import Testing

@testable import PushCore

@Suite("Edge: addresses and ranges")
struct EdgeAddressTests {
    /// Addresses read from text print back in their usual form.
    @Test(arguments: [
        ("203.0.113.7", "203.0.113.7", true),
        ("0.0.0.0", "0.0.0.0", true),
        ("255.255.255.255", "255.255.255.255", true),
        ("2001:db8::1", "2001:db8::1", false),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", false),
        ("::", "::", false),
        ("::1", "::1", false),
        ("::ffff:203.0.113.7", "203.0.113.7", true),
        ("::FFFF:cb00:7107", "203.0.113.7", true),
    ])
    func parseAndPrint(_ text: String, _ printed: String, _ isIPv4: Bool) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == printed)
        #expect(address.isIPv4 == isIPv4)
        #expect(IPAddress(printed) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", " 1.2.3.4", "1.2.3.4 ", "localhost", "[::1]", "fe80::1%eth0",
        "1::2::3", "12345::", "1.2.3.4/32",
    ])
    func invalidAddress(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    /// The IPv4-mapped form is the IPv4 address: equal, same hash, same bytes.
    @Test func mappedIsIPv4() throws {
        let plain = try #require(IPAddress("198.51.100.20"))
        let mapped = try #require(IPAddress("::ffff:198.51.100.20"))
        #expect(plain == mapped)
        #expect(Set([plain, mapped]).count == 1)
        #expect(mapped.bytes == [198, 51, 100, 20])
        #expect(plain.v4 == 0xC633_6414 && IPAddress(v4: 0xC633_6414) == plain)
    }

    /// Raw bytes as in a sockaddr or a PROXY v2 header: 4 or 16, mapped 16 bytes read as IPv4.
    @Test func fromBytes() throws {
        #expect(IPAddress(bytes: [203, 0, 113, 7])?.description == "203.0.113.7")
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]
        #expect(IPAddress(bytes: v6)?.description == "2001:db8::1")
        #expect(IPAddress(bytes: v6)?.bytes == v6)
        let mapped: [UInt8] = Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 1, 2, 3]
        #expect(IPAddress(bytes: mapped) == IPAddress("10.1.2.3"))
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 17)) == nil)
    }

    /// Loopback is 127.0.0.0/8 and ::1, mapped forms included; nothing else.
    @Test(arguments: [
        ("127.0.0.1", true), ("127.255.1.2", true), ("::ffff:127.0.0.1", true), ("::1", true),
        ("128.0.0.1", false), ("126.255.255.255", false), ("::", false), ("::2", false), ("0.0.0.1", false),
        ("::127.0.0.1", false),
    ])
    func loopback(_ text: String, _ expected: Bool) throws {
        #expect(try #require(IPAddress(text)).isLoopback == expected)
    }

    /// Ranges read from text, print back, and hold what they should.
    @Test(arguments: [
        ("203.0.113.0/24", "203.0.113.0/24", ["203.0.113.0", "203.0.113.255", "::ffff:203.0.113.9"],
            ["203.0.114.0", "203.0.112.255", "2001:db8::1"]),
        ("203.0.113.7/32", "203.0.113.7", ["203.0.113.7", "::ffff:203.0.113.7"], ["203.0.113.8"]),
        ("0.0.0.0/0", "0.0.0.0/0", ["1.2.3.4", "255.255.255.255"], ["::1", "2001:db8::"]),
        ("2001:db8::/32", "2001:db8::/32", ["2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"],
            ["2001:db9::", "10.0.0.1"]),
        ("2001:db8::/65", "2001:db8::/65", ["2001:db8::1", "2001:db8::7fff:ffff:ffff:ffff"],
            ["2001:db8::8000:0:0:0"]),
        ("::1", "::1", ["::1"], ["::2", "127.0.0.1"]),
        ("::/0", "::/0", ["::1", "2001:db8::1", "10.0.0.1"], []),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8", ["10.255.0.1"], ["11.0.0.0"]),
        ("10.0.0.0/31", "10.0.0.0/31", ["10.0.0.0", "10.0.0.1"], ["10.0.0.2"]),
    ])
    func range(_ text: String, _ printed: String, _ inside: [String], _ outside: [String]) throws {
        let range = try CIDR(text)
        #expect(range.description == printed)
        #expect(try CIDR(printed) == range)
        for address in inside { #expect(range.contains(try #require(IPAddress(address))), "\(address)") }
        for address in outside { #expect(!range.contains(try #require(IPAddress(address))), "\(address)") }
    }

    /// Prefix lengths count in the family written.
    @Test func prefixLength() throws {
        #expect(try CIDR("10.0.0.0/8").prefixLength == 8 && CIDR("10.0.0.0/8").isIPv4)
        #expect(try CIDR("2001:db8::/32").prefixLength == 32 && !CIDR("2001:db8::/32").isIPv4)
        #expect(try CIDR(network: #require(IPAddress("10.1.0.0")), prefixLength: 16).description == "10.1.0.0/16")
        #expect(CIDR(try #require(IPAddress("::1"))).prefixLength == 128)
    }

    /// A bad range is refused with a message that says what is wrong.
    @Test(arguments: [
        ("", "is not an IPv4 or IPv6 address"),
        ("example.com/24", "is not an IPv4 or IPv6 address"),
        ("10.0.0/8", "is not an IPv4 or IPv6 address"),
        ("10.0.0.0/", "expected 0 to 32"),
        ("10.0.0.0/33", "expected 0 to 32"),
        ("10.0.0.0/-1", "expected 0 to 32"),
        ("10.0.0.0/08", "expected 0 to 32"),
        ("10.0.0.0/8/8", "expected 0 to 32"),
        ("10.0.0.0/ 8", "expected 0 to 32"),
        ("2001:db8::/129", "expected 0 to 128"),
        ("203.0.113.7/24", "the range is 203.0.113.0/24"),
        ("2001:db8::1/32", "the range is 2001:db8::/32"),
    ])
    func invalidRange(_ text: String, _ message: String) {
        #expect {
            try CIDR(text)
        } throws: { error in
            let description = "\(error)"
            return description.hasPrefix("\"\(text)\"") && description.contains(message)
        }
    }
}
