import Testing

@testable import PushCore

@Suite struct Base64Tests {
    @Test(arguments: ["", "f", "fo", "foo", "foob", "fooba", "foobar"])
    func roundTrip(text: String) {
        let bytes = Array(text.utf8)
        #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        #expect(Base64.decode(Base64.encode(bytes, url: true)) == bytes)
    }

    /// RFC 4648 §10, both alphabets.
    @Test(arguments: [
        ("", "", ""), ("f", "Zg==", "Zg"), ("fo", "Zm8=", "Zm8"), ("foo", "Zm9v", "Zm9v"),
        ("foob", "Zm9vYg==", "Zm9vYg"), ("fooba", "Zm9vYmE=", "Zm9vYmE"), ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
    ])
    func rfc4648Vectors(text: String, standard: String, url: String) {
        #expect(Base64.encode(Array(text.utf8)) == standard)
        #expect(Base64.encode(Array(text.utf8), url: true) == url)
        #expect(Base64.decode(standard) == Array(text.utf8))
        #expect(Base64.decode(url) == Array(text.utf8))
    }

    @Test func knownValues() {
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode([0xFB, 0xFF], url: true) == "-_8")
        #expect(Base64.encode([0xFB, 0xFF]) == "+/8=")
        #expect(Base64.decode("Zm9vYg==") == Array("foob".utf8))
        #expect(Base64.decode("Zm9v!") == nil)
        // Non-contiguous input is copied and encodes the same.
        #expect(Base64.encode((0..<5).lazy.map { UInt8($0) }) == "AAECAwQ=")
    }

    /// What callers rely on being accepted: either alphabet, mixed, padding optional, loose padding counts,
    /// ignored trailing bits (the token decoder re-encodes to refuse those itself).
    @Test(arguments: [
        ("-_8=", [0xFB, 0xFF]), ("+/8", [0xFB, 0xFF]), ("+_8", [0xFB, 0xFF]), ("QQ=", [0x41]), ("QQ", [0x41]),
        ("QR==", [0x41]), ("QUJD==", [0x41, 0x42, 0x43]), ("=", []), ("==", []),
    ] as [(String, [UInt8])])
    func acceptedSpellings(text: String, bytes: [UInt8]) {
        #expect(Base64.decode(text) == bytes)
    }

    /// Malformed input, named by what is wrong with it; none of it decodes.
    @Test(arguments: [
        ("whitespace inside", "Zm9v YmFy"), ("leading space", " Zm9v"), ("trailing newline", "Zm9v\n"),
        ("trailing CRLF", "Zm9vYg==\r\n"), ("tab", "Zm9v\tYg=="), ("padding inside", "Zm=9v"),
        ("data after padding", "Zg==Zg=="), ("three padding", "Zg==="), ("lone last character", "Zm9vY"),
        ("lone character", "Z"), ("bad character", "Zm9v!"), ("dot", "Zm9v.YmFy"), ("non-ASCII", "Zm9vé"),
        ("NUL", "Zm9v\u{0}"), ("colon", "Zm9v:"),
    ])
    func malformed(name: String, text: String) {
        #expect(Base64.decode(text) == nil, "\(name)")
    }

    /// The WebSocket handshake's key: 24 characters decoding to 16 bytes.
    @Test func webSocketKey() {
        #expect(Base64.decode("dGhlIHNhbXBsZSBub25jZQ==")?.count == 16)
        #expect(Base64.encode(SHA1.digest(Array("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8)))
            == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    /// Against the hand-written coder pushgw had before OpenSSL: the same text for random bytes, and the same
    /// answer (bytes or refusal) for random text over the alphabets, padding, whitespace and a few strangers.
    @Test func matchesTheReference() {
        var random = SplitMix(seed: 11)
        for length in Array(0..<70) + [255, 256, 257, 1000, 4096] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            #expect(Base64.encode(bytes) == ReferenceBase64.encode(bytes), "\(bytes)")
            #expect(Base64.encode(bytes, url: true) == ReferenceBase64.encode(bytes, url: true), "\(bytes)")
        }
        let alphabet = Array("ABCXYZabcxyz0189+/-_".utf8)
        let strangers = Array("= \n\r\t.!:".utf8) + [0, 0x80, 0xFF]
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...14, using: &random)
            var text: [UInt8] = (0..<length).map { _ in alphabet.randomElement(using: &random)! }
            if Bool.random(using: &random) {
                text += Array(repeating: UInt8(ascii: "="), count: Int.random(in: 1...3, using: &random))
            }
            if Int.random(in: 0..<4, using: &random) == 0, !text.isEmpty {
                text[Int.random(in: 0..<text.count, using: &random)] = strangers.randomElement(using: &random)!
            }
            let string = String(decoding: text, as: UTF8.self)
            #expect(Base64.decode(string) == ReferenceBase64.decode(string), "\(string.debugDescription)")
        }
    }

    /// Large input crosses OpenSSL's call chunks unchanged.
    @Test func large() {
        var random = SplitMix(seed: 7)
        let count = 3 << 20 + 5
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for _ in 0..<count { bytes.append(UInt8(truncatingIfNeeded: random.next())) }
        let text = Base64.encode(bytes)
        #expect(text.utf8.count == (count + 2) / 3 * 4)
        #expect(Base64.decode(text) == bytes)
        #expect(Base64.decode(Base64.encode(bytes, url: true)) == bytes)
        // Around the 1 KiB rounds of URL-safe and partial-quantum text.
        for length in [765, 766, 767, 768, 769, 770, 1535, 1536, 1537] {
            let slice = Array(bytes.prefix(length))
            #expect(Base64.decode(Base64.encode(slice, url: true)) == slice, "\(length)")
            #expect(Base64.decode(Base64.encode(slice)) == slice, "\(length)")
            let unpadded = String(Base64.encode(slice).filter { $0 != "=" })
            #expect(Base64.decode(unpadded) == slice, "\(length)")
        }
    }
}
