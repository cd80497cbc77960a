import Testing

@testable import PushCore

/// A deterministic keyed checksum standing in for HMAC-SHA256: PushCore's token logic does not depend on which
/// MAC it is given, and these tests must not link OpenSSL. Different keys give different MACs.
private struct ChecksumAuthenticator: MessageAuthenticator {
    var key: [UInt8]

    init(_ key: String) { self.key = Array(key.utf8) }

    func mac(_ message: [UInt8]) -> [UInt8] {
        // FNV-1a over key, a separator and message, then stretched to 32 bytes by re-mixing.
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key + [0xFF] + message { state = (state ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        var out: [UInt8] = []
        for round in 0..<4 {
            state = (state ^ UInt64(round)) &* 0x0000_0100_0000_01B3
            state ^= state >> 29
            withUnsafeBytes(of: state.bigEndian) { out.append(contentsOf: $0) }
        }
        return out
    }

    func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool { a == b }
}

/// Answers with a MAC recorded from `openssl dgst -sha256 -hmac` for one message, so that a token can be
/// compared with one built entirely by hand outside Swift.
private struct RecordedAuthenticator: MessageAuthenticator {
    var message: [UInt8]
    var recordedMAC: [UInt8]

    func mac(_ message: [UInt8]) -> [UInt8] { message == self.message ? recordedMAC : [UInt8](repeating: 0, count: 32) }
    func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool { a == b }
}

/// Computes a MAC but never accepts one, to show that verification compares through the authenticator.
private struct RefusingAuthenticator: MessageAuthenticator {
    func mac(_ message: [UInt8]) -> [UInt8] { [1, 2, 3] }
    func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool { false }
}

private let authenticator = ChecksumAuthenticator("test-secret")
private let signer = TokenSigner(authenticator: authenticator)
private let testNow: UInt64 = 1_700_000_000
private let later = testNow + 3600

/// A token over arbitrary payload bytes, validly signed, for payloads `issue` would never write.
private func signed(_ payload: String) -> String {
    let bytes = Array(payload.utf8)
    return Base64.encode(bytes, url: true) + "." + Base64.encode(authenticator.mac(bytes), url: true)
}

/// Rewrites one base64url part of `token` (0: payload, 1: MAC) through `change`.
private func altering(_ token: String, part: Int, _ change: (inout [UInt8]) -> Void) -> String {
    var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    var bytes = Base64.decode(parts[part])!
    change(&bytes)
    parts[part] = Base64.encode(bytes, url: true)
    return parts.joined(separator: ".")
}

private func code(
    _ token: String, user: String = "alice", device: String? = "phone-1", now: UInt64 = testNow
) -> String? {
    do {
        _ = try signer.verify(token, user: user, device: device, now: now)
        return nil
    } catch {
        return error.code
    }
}

/// A malformed token, named by scenario.
struct MalformedToken: Sendable, CustomTestStringConvertible {
    var name: String
    var token: String
    var testDescription: String { name }

    static let all: [MalformedToken] = {
        let good = signer.issue(user: "alice", device: "phone-1", expiresAt: later)
        let parts = good.split(separator: ".").map(String.init)
        let huge = signer.issue(user: "alice", device: String(repeating: "x", count: 4000), expiresAt: later)
        return [
            .init(name: "empty", token: ""),
            .init(name: "only a dot", token: "."),
            .init(name: "no dot", token: parts[0] + parts[1]),
            .init(name: "two dots", token: good + "." + parts[1]),
            .init(name: "trailing dot", token: good + "."),
            .init(name: "empty payload", token: "." + parts[1]),
            .init(name: "empty signature", token: parts[0] + "."),
            .init(name: "bad base64 in payload", token: "ey!J." + parts[1]),
            .init(name: "bad base64 in signature", token: parts[0] + "." + parts[1].dropLast() + "*"),
            .init(name: "padding", token: parts[0] + "." + parts[1] + "="),
            .init(name: "lone sextet", token: parts[0] + "." + parts[1] + "AA"),
            .init(name: "space", token: " " + good),
            .init(name: "payload not JSON", token: signed("alice:phone-1")),
            .init(name: "payload a JSON array", token: signed(#"["alice","phone-1",1700003600]"#)),
            .init(name: "payload with trailing bytes", token: signed(#"{"u":"alice","d":"phone-1","exp":1}x"#)),
            .init(name: "missing u", token: signed(#"{"d":"phone-1","exp":1700003600}"#)),
            .init(name: "missing d", token: signed(#"{"u":"alice","exp":1700003600}"#)),
            .init(name: "missing exp", token: signed(#"{"u":"alice","d":"phone-1"}"#)),
            .init(name: "u not a string", token: signed(#"{"u":42,"d":"phone-1","exp":1700003600}"#)),
            .init(name: "d null", token: signed(#"{"u":"alice","d":null,"exp":1700003600}"#)),
            .init(name: "exp a string", token: signed(#"{"u":"alice","d":"phone-1","exp":"1700003600"}"#)),
            .init(name: "exp negative", token: signed(#"{"u":"alice","d":"phone-1","exp":-1}"#)),
            .init(name: "exp fractional", token: signed(#"{"u":"alice","d":"phone-1","exp":1700003600.5}"#)),
            .init(name: "exp too large", token: signed(#"{"u":"alice","d":"phone-1","exp":18446744073709551616}"#)),
            .init(name: "huge token, validly signed", token: huge),
            .init(name: "huge garbage", token: String(repeating: "A", count: 1 << 20)),
        ]
    }()
}

@Suite struct TokenTests {
    /// An issued token verifies for its user and device and gives back its claims.
    @Test func roundTrip() throws {
        let token = signer.issue(user: "alice", device: "phone-1", expiresAt: later)
        let claims = try signer.verify(token, user: "alice", device: "phone-1", now: testNow)
        #expect(claims == TokenClaims(user: "alice", device: "phone-1", expiresAt: later))
        #expect(token.split(separator: ".").count == 2)
        #expect(!token.contains("=") && !token.contains("+") && !token.contains("/"))
    }

    /// Ids that need JSON escaping survive the round trip.
    @Test func escapedIdentifiers() throws {
        let user = "a\"b\\c\n\u{01}é😀"
        let token = signer.issue(user: user, device: "dev/1 ✓", expiresAt: later)
        let claims = try signer.verify(token, user: user, device: "dev/1 ✓", now: testNow)
        #expect(claims.user == user && claims.device == "dev/1 ✓")
    }

    /// Valid through `exp - 1`; refused from `exp` on.
    @Test func expiry() throws {
        let token = signer.issue(user: "alice", device: "phone-1", expiresAt: later)
        #expect(code(token, now: later - 1) == nil)
        #expect(code(token, now: later) == "expired")
        #expect(code(token, now: later + 86_400) == "expired")
        #expect(code(signer.issue(user: "alice", device: "phone-1", expiresAt: 0), now: 0) == "expired")
    }

    /// Changing any byte of the MAC, or of the payload under it, breaks the signature.
    @Test(arguments: 0..<32) func forgedSignature(index: Int) {
        let token = signer.issue(user: "alice", device: "phone-1", expiresAt: later)
        #expect(code(altering(token, part: 1) { $0[index] ^= 0x01 }) == "bad_signature")
    }

    /// A payload altered after signing is refused, even when the new payload is a perfectly good token body.
    @Test func forgedPayload() {
        let token = signer.issue(user: "alice", device: "phone-1", expiresAt: later)
        // Same length, another user: "alice" -> "alicf".
        let otherUser = altering(token, part: 0) { bytes in
            let index = bytes.firstIndex(of: UInt8(ascii: "e"))!
            bytes[index] += 1
        }
        #expect(code(otherUser, user: "alicf") == "bad_signature")
        // Later expiry: the last digit of exp.
        let extended = altering(token, part: 0) { $0[$0.count - 2] = UInt8(ascii: "9") }
        #expect(code(extended) == "bad_signature")
        // Every single-bit flip of the payload.
        let length = Base64.decode(String(token.split(separator: ".")[0]))!.count
        for index in 0..<length {
            #expect(code(altering(token, part: 0) { $0[index] ^= 0x20 }) == "bad_signature")
        }
    }

    /// A token signed with another secret is refused.
    @Test func otherSecret() {
        let other = TokenSigner(authenticator: ChecksumAuthenticator("other-secret"))
        #expect(code(other.issue(user: "alice", device: "phone-1", expiresAt: later)) == "bad_signature")
    }

    /// The MAC is checked before the payload is parsed: unsigned garbage is a bad signature, not a parse error.
    @Test func signatureBeforeParsing() {
        let garbage = Base64.encode(Array("not json".utf8), url: true) + "."
            + Base64.encode([UInt8](repeating: 7, count: 32), url: true)
        #expect(code(garbage) == "bad_signature")
        let expiredAndForged = altering(signer.issue(user: "bob", device: "x", expiresAt: 1), part: 1) { $0[0] ^= 1 }
        #expect(code(expiredAndForged) == "bad_signature")
    }

    /// MACs are compared with the authenticator's (constant-time) `equal`, never with `==`.
    @Test func comparesThroughAuthenticator() {
        let refusing = TokenSigner(authenticator: RefusingAuthenticator())
        let token = refusing.issue(user: "alice", device: "phone-1", expiresAt: later)
        #expect(throws: TokenError.badSignature) {
            try refusing.verify(token, user: "alice", device: nil, now: testNow)
        }
    }

    /// AUTH's `mid` must be the token's user.
    @Test func wrongUser() {
        let token = signer.issue(user: "alice", device: "phone-1", expiresAt: later)
        #expect(code(token, user: "bob") == "wrong_user")
        #expect(code(token, user: "Alice") == "wrong_user")
        #expect(code(token, user: "") == "wrong_user")
    }

    /// AUTH's `key`, when given, must be the token's device.
    @Test func wrongDevice() {
        let token = signer.issue(user: "alice", device: "phone-1", expiresAt: later)
        #expect(code(token, device: "phone-2") == "wrong_device")
        #expect(code(token, device: "") == "wrong_device")
    }

    /// An AUTH without `key` gets the token's device as its key.
    @Test func deviceFromToken() throws {
        let token = signer.issue(user: "alice", device: "phone-1", expiresAt: later)
        let claims = try signer.verify(token, user: "alice", device: nil, now: testNow)
        #expect(claims.device == "phone-1")
    }

    /// Each malformed shape is `malformed`, never a crash or a pass.
    @Test(arguments: MalformedToken.all) func malformed(_ input: MalformedToken) {
        #expect(code(input.token) == "malformed")
    }

    /// A token just under the length limit still verifies.
    @Test func lengthLimit() throws {
        let device = String(repeating: "x", count: 2900)
        let token = signer.issue(user: "alice", device: device, expiresAt: later)
        #expect(token.utf8.count <= TokenSigner.maxTokenLength)
        #expect(try signer.verify(token, user: "alice", device: device, now: testNow).device == device)
    }

    /// Errors carry their stable code and a message.
    @Test func errorShape() {
        #expect(TokenError.malformed("x").code == "malformed")
        #expect(TokenError.badSignature.code == "bad_signature")
        #expect(TokenError.expired(at: 1, now: 2).code == "expired")
        #expect(TokenError.wrongUser.code == "wrong_user")
        #expect(TokenError.wrongDevice.code == "wrong_device")
        #expect(TokenError.expired(at: 1, now: 2).description == "expired: token expired at 1 (now 2)")
    }
}

/// The token format byte for byte against one built outside Swift with the shell and OpenSSL's CLI:
///
///     P='{"u":"alice","d":"phone-1","exp":1700000000}'
///     b64u() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
///     printf '%s' "$P" | b64u                                                   # payload part
///     printf '%s' "$P" | openssl dgst -sha256 -hmac pushgw-test-secret -binary | b64u   # MAC part
///
/// HMAC-SHA256("pushgw-test-secret", P) = 02574ad922bd101ebffe0c2c6b4835a4ea4f9a548bc4c9b1ad9784af76b88c0b.
@Suite struct TokenFormatTests {
    static let payload = #"{"u":"alice","d":"phone-1","exp":1700000000}"#
    static let hmac = hexBytes("02574ad922bd101ebffe0c2c6b4835a4ea4f9a548bc4c9b1ad9784af76b88c0b")
    static let expected = "eyJ1IjoiYWxpY2UiLCJkIjoicGhvbmUtMSIsImV4cCI6MTcwMDAwMDAwMH0"
        + ".AldK2SK9EB6__gwsa0g1pOpPmlSLxMmxrZeEr3a4jAs"
    static let signer = TokenSigner(
        authenticator: RecordedAuthenticator(message: Array(payload.utf8), recordedMAC: hmac))

    static func hexBytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map {
            UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)!
        }
    }

    /// `issue` writes exactly the payload JSON and encodings that any HMAC-SHA256 implementation reproduces.
    @Test func issuesKnownToken() {
        #expect(Self.signer.issue(user: "alice", device: "phone-1", expiresAt: 1_700_000_000) == Self.expected)
    }

    /// The hand-built token verifies.
    @Test func verifiesKnownToken() throws {
        let claims = try Self.signer.verify(Self.expected, user: "alice", device: "phone-1", now: 1_699_999_999)
        #expect(claims == TokenClaims(user: "alice", device: "phone-1", expiresAt: 1_700_000_000))
    }

    /// The same MAC bytes spelled differently are refused as malformed, so that a token has exactly one
    /// spelling: non-zero trailing bits in the last character (`s` → `t`), or the standard alphabet (`_` → `/`).
    @Test(arguments: [
        String(TokenFormatTests.expected.dropLast()) + "t", TokenFormatTests.expected.replacing("_", with: "/"),
    ])
    func refusesNonCanonicalSpelling(respelled: String) {
        #expect(Base64.decode(String(respelled.split(separator: ".")[1])) == Self.hmac)
        #expect(throws: TokenError.malformed("token signature is not base64url")) {
            try Self.signer.verify(respelled, user: "alice", device: "phone-1", now: 1_699_999_999)
        }
    }
}
