import Testing

@testable import PushCore

/// HMAC-SHA256 through OpenSSL (device tokens, webhook signatures) against RFC 4231's test vectors.
@Suite("HMAC-SHA256")
struct HMACTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let key: [UInt8]
        let data: [UInt8]
        let mac: String
        var testDescription: String { name }
    }

    /// RFC 4231 §4.2–4.8 but 4.6 (truncated output): short and long keys, short and long data.
    @Test(arguments: [
        Vector(
            name: "4.2: 20-byte key", key: [UInt8](repeating: 0x0b, count: 20), data: Array("Hi There".utf8),
            mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        Vector(
            name: "4.3: key shorter than the output", key: Array("Jefe".utf8),
            data: Array("what do ya want for nothing?".utf8),
            mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        Vector(
            name: "4.4: 50 bytes of data", key: [UInt8](repeating: 0xaa, count: 20),
            data: [UInt8](repeating: 0xdd, count: 50),
            mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        Vector(
            name: "4.5: 25-byte key", key: Array(1...25), data: [UInt8](repeating: 0xcd, count: 50),
            mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        Vector(
            name: "4.7: key longer than the block", key: [UInt8](repeating: 0xaa, count: 131),
            data: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
            mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        Vector(
            name: "4.8: long key and long data", key: [UInt8](repeating: 0xaa, count: 131),
            data: Array(
                ("This is a test using a larger than block-size key and a larger than block-size data. The key needs "
                    + "to be hashed before being used by the HMAC algorithm.").utf8),
            mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        Vector(
            name: "empty key and message", key: [], data: [],
            mac: "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"),
    ])
    func rfc4231(_ vector: Vector) {
        #expect(Hex.lowercase(OpenSSLHMAC(key: vector.key).mac(vector.data)) == vector.mac)
    }

    /// `init(secret:)` keys with the UTF-8 bytes of the text.
    @Test func secretIsUTF8() {
        let mac = OpenSSLHMAC(secret: "Jefe").mac(Array("what do ya want for nothing?".utf8))
        #expect(Hex.lowercase(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// Equal MACs compare equal; one differing byte anywhere, or another length, does not.
    @Test func constantTimeEqual() {
        let hmac = OpenSSLHMAC(secret: "k")
        let mac = hmac.mac(Array("message".utf8))
        #expect(hmac.equal(mac, mac))
        #expect(hmac.equal([], []))
        for index in [0, 15, 31] {
            var other = mac
            other[index] ^= 1
            #expect(!hmac.equal(mac, other))
        }
        #expect(!hmac.equal(mac, Array(mac.dropLast())))
    }
}
