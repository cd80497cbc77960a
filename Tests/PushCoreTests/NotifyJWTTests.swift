import COpenSSL
import Testing

@testable import PushCore

/// A compact JWT taken apart: the decoded header and claims text, the signed input, the decoded signature.
private struct JWTParts {
    let header: String
    let claims: String
    let signingInput: [UInt8]
    let signature: [UInt8]

    init?(_ token: String) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts.contains(where: { $0.contains("=") }),
            let header = Base64.decode(parts[0]), let claims = Base64.decode(parts[1]),
            let signature = Base64.decode(parts[2])
        else { return nil }
        self.header = String(decoding: header, as: UTF8.self)
        self.claims = String(decoding: claims, as: UTF8.self)
        signingInput = Array((parts[0] + "." + parts[1]).utf8)
        self.signature = signature
    }
}

private func key(_ pem: String) throws(CredentialError) -> SigningKey { try SigningKey(pem: Array(pem.utf8)) }

/// A DER INTEGER of `content` (given as DER writes it, leading zero included).
private func integer(_ content: [UInt8]) -> [UInt8] { [0x02, UInt8(content.count)] + content }

/// A DER SEQUENCE of `content`.
private func sequence(_ content: [UInt8]) -> [UInt8] { [0x30, UInt8(content.count)] + content }

@Suite("Notifications: JWT signing")
struct NotifyJWTTests {
    // MARK: - ES256 (APNs)

    /// The APNs provider token: the exact header and claims, a 64-byte r ‖ s signature that OpenSSL verifies
    /// with the public key, and that fails once the claims are changed.
    @Test func apnsTokenVerifiesWithPublicKey() throws {
        let token = try APNsProviderToken.make(
            key: try key(NotifyTestKeys.ecP256), keyID: "ABC123DEFG", teamID: "DEF123GHIJ", issuedAt: 1_700_000_000)
        let parts = try #require(JWTParts(token))
        #expect(parts.header == #"{"alg":"ES256","kid":"ABC123DEFG"}"#)
        #expect(parts.claims == #"{"iss":"DEF123GHIJ","iat":1700000000}"#)
        #expect(parts.signature.count == 64)
        let publicKey = try #require(OpenSSLVerify.key(pem: NotifyTestKeys.ecP256Public))
        defer { EVP_PKEY_free(publicKey) }
        #expect(OpenSSLVerify.verify(parts.signature, of: parts.signingInput, key: publicKey))
        var forged = parts.signingInput
        forged[forged.count - 1] ^= 1
        #expect(!OpenSSLVerify.verify(parts.signature, of: forged, key: publicKey))
    }

    /// The older SEC 1 PEM of the same key reads as an ES256 key too, and its signatures verify.
    @Test func sec1KeyReads() throws {
        let signing = try key(NotifyTestKeys.ecP256SEC1)
        #expect(signing.algorithm == .es256)
        let publicKey = try #require(OpenSSLVerify.key(pem: NotifyTestKeys.ecP256Public))
        defer { EVP_PKEY_free(publicKey) }
        let message = Array("header.claims".utf8)
        #expect(OpenSSLVerify.verify(try signing.signature(message), of: message, key: publicKey))
    }

    /// A key pair generated here: thousands of signatures, every one 64 bytes and valid, including those whose r or
    /// s is short (a leading zero byte, about one signature in 128), which DER writes in fewer bytes.
    @Test func generatedKeySignaturesVerifyIncludingShortIntegers() throws {
        let pair = try #require(OpenSSLVerify.generateP256())
        defer { EVP_PKEY_free(pair) }
        let signing = try key(try #require(OpenSSLVerify.privatePEM(pair)))
        #expect(signing.algorithm == .es256)
        var short = 0
        var signatures = 0
        while short < 4 && signatures < 20_000 {
            let message = Array("message \(signatures)".utf8)
            let signature = try signing.signature(message)
            #expect(signature.count == 64)
            #expect(OpenSSLVerify.verify(signature, of: message, key: pair), "signature \(signatures)")
            if signature[0] == 0 || signature[32] == 0 { short += 1 }
            signatures += 1
        }
        #expect(short == 4, "signatures with a short r or s among \(signatures)")
    }

    // MARK: - DER to r ‖ s

    struct DERCase: Sendable, CustomTestStringConvertible {
        let name: String
        let der: [UInt8]
        let raw: [UInt8]?
        var testDescription: String { name }
    }

    private static let r32 = [UInt8](repeating: 0x11, count: 32)
    private static let s32 = [UInt8](repeating: 0x22, count: 32)
    private static let high32 = [0x80] + [UInt8](repeating: 0x33, count: 31)

    /// Strict DER in, r and s each left-padded to 32 bytes out; anything DER would not write is refused.
    @Test(arguments: [
        DERCase(name: "full-size r and s", der: sequence(integer(r32) + integer(s32)), raw: r32 + s32),
        DERCase(
            name: "top bit set: a leading zero to strip", der: sequence(integer([0] + high32) + integer([0] + high32)),
            raw: high32 + high32),
        DERCase(
            name: "short r: padded", der: sequence(integer(Array(r32.dropFirst())) + integer(s32)),
            raw: [0] + r32.dropFirst() + s32),
        DERCase(
            name: "short s with a leading zero of its own",
            der: sequence(integer(r32) + integer([0, 0x80] + [UInt8](repeating: 0x44, count: 29))),
            raw: r32 + [0, 0, 0x80] + [UInt8](repeating: 0x44, count: 29)),
        DERCase(
            name: "one-byte r and s", der: sequence(integer([1]) + integer([0x7f])),
            raw: [UInt8](repeating: 0, count: 31) + [1] + [UInt8](repeating: 0, count: 31) + [0x7f]),
        DERCase(name: "zero", der: sequence(integer([0]) + integer([0])), raw: [UInt8](repeating: 0, count: 64)),
        DERCase(name: "empty", der: [], raw: nil),
        DERCase(name: "not a sequence", der: [0x31, 6] + integer([1]) + integer([1]), raw: nil),
        DERCase(name: "one integer only", der: sequence(integer(r32)), raw: nil),
        DERCase(name: "three integers", der: sequence(integer([1]) + integer([1]) + integer([1])), raw: nil),
        DERCase(name: "bytes after the sequence", der: sequence(integer([1]) + integer([1])) + [0], raw: nil),
        DERCase(name: "length past the end", der: [0x30, 7] + integer([1]) + integer([1]), raw: nil),
        DERCase(name: "negative r", der: sequence(integer(high32) + integer(s32)), raw: nil),
        DERCase(name: "needless leading zero", der: sequence(integer([0, 1]) + integer([1])), raw: nil),
        DERCase(name: "empty integer", der: sequence([0x02, 0] + integer([1])), raw: nil),
        DERCase(name: "r over 32 bytes", der: sequence(integer([1] + r32) + integer([1])), raw: nil),
        DERCase(name: "long-form length below 128", der: [0x30, 0x81, 6] + integer([1]) + integer([1]), raw: nil),
    ])
    func derToRaw(_ example: DERCase) {
        #expect(ECDSASignature.raw(fromDER: example.der) == example.raw)
    }

    /// What OpenSSL's own `ECDSA_SIG` encodes comes back unchanged, at every length of r and s.
    @Test(arguments: [0, 1, 2, 31])
    func openSSLDERRoundTrip(_ zeros: Int) throws {
        let r = [UInt8](repeating: 0, count: zeros) + [UInt8](repeating: 0xa5, count: 32 - zeros)
        let s = [UInt8](repeating: 0, count: zeros) + [0x01] + [UInt8](repeating: 0x5a, count: 31 - zeros)
        let der = try #require(OpenSSLVerify.der(fromRaw: r + s))
        #expect(ECDSASignature.raw(fromDER: der) == r + s)
    }

    // MARK: - The provider token cache

    /// One token for 50 minutes, a new one from the 50th minute on, with its own iat.
    @Test func providerTokenReusedFor50Minutes() throws {
        var tokens = try APNsProviderToken(key: try key(NotifyTestKeys.ecP256), keyID: "K", teamID: "T")
        let start: UInt64 = 1_700_000_000
        let first = try tokens.token(now: start)
        #expect(tokens.issuedAt == start)
        #expect(try tokens.token(now: start + 1) == first)
        #expect(try tokens.token(now: start + 50 * 60 - 1) == first)
        let second = try tokens.token(now: start + 50 * 60)
        #expect(second != first)
        #expect(JWTParts(second)?.claims == #"{"iss":"T","iat":\#(start + 3000)}"#)
        #expect(try tokens.token(now: start + 3000 + 2999) == second)
    }

    /// `invalidate()` (after `ExpiredProviderToken`) and a clock that went back both make a new token.
    @Test func providerTokenRenewedWhenInvalidatedOrClockWentBack() throws {
        var tokens = try APNsProviderToken(key: try key(NotifyTestKeys.ecP256), keyID: "K", teamID: "T")
        let first = try tokens.token(now: 2000)
        tokens.invalidate()
        #expect(tokens.issuedAt == nil)
        let second = try tokens.token(now: 2001)
        #expect(second != first && tokens.issuedAt == 2001)
        let third = try tokens.token(now: 1500)
        #expect(third != second && tokens.issuedAt == 1500)
    }

    // MARK: - RS256 (the FCM grant)

    /// The service account's grant: the exact header and claims (an hour of validity), a 256-byte signature that
    /// OpenSSL verifies with the public key.
    @Test func googleAssertionVerifiesWithPublicKey() throws {
        let account = try ServiceAccount(json: Array(NotifyTestKeys.serviceAccount.utf8))
        #expect(account.clientEmail == "notifier@pushgw-test.iam.gserviceaccount.com")
        #expect(account.projectID == "pushgw-test" && account.keyID == "0123456789abcdef")
        #expect(account.tokenURI == "https://oauth2.googleapis.com/token")
        let assertion = try GoogleOAuth.assertion(
            account: account, audience: "https://oauth2.googleapis.com/token", issuedAt: 1_700_000_000)
        let parts = try #require(JWTParts(assertion))
        #expect(parts.header == #"{"alg":"RS256","typ":"JWT"}"#)
        #expect(
            parts.claims
                == #"{"iss":"notifier@pushgw-test.iam.gserviceaccount.com","#
                + #""scope":"https://www.googleapis.com/auth/firebase.messaging","#
                + #""aud":"https://oauth2.googleapis.com/token","iat":1700000000,"exp":1700003600}"#)
        #expect(parts.signature.count == 256)
        let publicKey = try #require(OpenSSLVerify.key(pem: NotifyTestKeys.rsa2048Public))
        defer { EVP_PKEY_free(publicKey) }
        #expect(OpenSSLVerify.verify(parts.signature, of: parts.signingInput, key: publicKey))
        #expect(!OpenSSLVerify.verify(parts.signature, of: parts.signingInput + [0x2e], key: publicKey))
    }

    // MARK: - Keys that are refused

    /// Only EC P-256 and RSA ≥ 2048 are signing keys; an encrypted key is refused without a passphrase prompt;
    /// OpenSSL's error queue is left empty either way (TLS reads it).
    @Test(arguments: [
        (NotifyTestKeys.ecP384, "wrong_key_type"),
        (NotifyTestKeys.rsa1024, "wrong_key_type"),
        (NotifyTestKeys.ed25519, "wrong_key_type"),
        (NotifyTestKeys.ecP256Encrypted, "bad_key"),
        (NotifyTestKeys.ecP256Public, "bad_key"),
        ("not a key", "bad_key"),
        ("", "bad_key"),
    ])
    func refusedKeys(_ pem: String, _ code: String) {
        #expect(throws: CredentialError.self) { try key(pem) }
        do {
            _ = try key(pem)
        } catch {
            #expect(error.code == code, "\(error)")
        }
        #expect(ERR_peek_error() == 0)
    }

    /// RSA keys sign RS256; APNs tokens refuse them, as service accounts refuse EC keys.
    @Test func keyKindsPerProvider() throws {
        #expect(try key(NotifyTestKeys.rsa2048).algorithm == .rs256)
        #expect(throws: CredentialError.wrongKeyType("APNs needs an EC P-256 key (.p8), got one for RS256")) {
            try APNsProviderToken(key: try key(NotifyTestKeys.rsa2048), keyID: "K", teamID: "T")
        }
        var writer = JSONWriter()
        writer.object {
            $0.field("client_email", "a@b")
            $0.field("private_key", NotifyTestKeys.ecP256)
        }
        #expect(throws: CredentialError.self) { try ServiceAccount(json: writer.bytes) }
    }

    /// A service-account file without what the grant needs is refused, naming the member.
    @Test(arguments: [
        ("{", "not JSON"),
        ("[]", "expected a JSON object"),
        (#"{"type":"authorized_user","client_email":"a@b","private_key":"x"}"#, "type is \"authorized_user\""),
        (#"{"private_key":"x"}"#, "client_email is missing"),
        (#"{"client_email":"","private_key":"x"}"#, "client_email is missing"),
        (#"{"client_email":"a@b"}"#, "private_key is missing"),
        (#"{"client_email":7,"private_key":"x"}"#, "client_email must be a string"),
    ])
    func badServiceAccount(_ json: String, _ message: String) {
        do {
            _ = try ServiceAccount(json: Array(json.utf8))
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.code == "bad_service_account" && error.message.contains(message), "\(error)")
        }
    }
}
