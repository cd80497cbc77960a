// SHA-1 of the script bodies (EVALSHA): FIPS 180 vectors and the reference implementation.
import Testing

@testable import PushCore

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite struct SHA1Tests {
    /// FIPS 180 vectors, padding boundaries (55, 56, 63, 64, 119, 120 bytes), a million bytes.
    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
                + "nopqrstu", "a49b2446a02c645bf419f995b67091253a04a259"
        ),
        (String(repeating: "a", count: 55), "c1c8bbdc22796e28c0e15163d20899b65621d65a"),
        (String(repeating: "a", count: 56), "c2db330f6083854c99d4b5bfb6e8f29f201be699"),
        (String(repeating: "a", count: 63), "03f09f5b158a7a8cdad920bddc29b81c18a551f5"),
        (String(repeating: "a", count: 64), "0098ba824b5c16427bd7a1122a5a442a25ec644d"),
        (String(repeating: "a", count: 119), "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"),
        (String(repeating: "a", count: 120), "f34c1488385346a55709ba056ddd08280dd4c6d6"),
        (String(repeating: "a", count: 1_000_000), "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
    ])
    func sha1Vectors(input: String, hex: String) {
        #expect(SHA1.hex(bytes(input)) == hex)
        #expect(SHA1.digest(bytes(input)).count == 20)
    }

    /// The same digest as the hand-written SHA-1 pushgw had before OpenSSL, for every length around the block
    /// and padding boundaries.
    @Test func sha1MatchesTheReference() {
        let data = (0..<1100).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for length in Array(0...200) + [511, 512, 513, 1023, 1024, 1025, 1100] {
            let input = Array(data.prefix(length))
            #expect(SHA1.digest(input) == ReferenceSHA1.digest(input), "\(length)")
            #expect(SHA1.hex(input) == ReferenceSHA1.hex(input), "\(length)")
        }
    }

    /// Non-contiguous input takes the copying path and hashes the same.
    @Test func sha1OfSequence() {
        let data =
            Array((0...255).map(UInt8.init)) + Array((0...255).map(UInt8.init)) + Array((0...255).map(UInt8.init))
        #expect(SHA1.hex(data) == "ac2a264c8ec1f4232a40854e8239bc3a697ab1d2")
        #expect(SHA1.hex(AnySequence(data)) == "ac2a264c8ec1f4232a40854e8239bc3a697ab1d2")
        #expect(bodyHash(data) == SHA1.hex(data))
    }
}
