internal import COpenSSL

/// The JWS algorithms pushgw signs with (RFC 7518 §3).
public enum JWTAlgorithm: String, Sendable, Equatable {
    /// ECDSA on P-256 with SHA-256: APNs provider tokens, from the `.p8` key.
    case es256 = "ES256"
    /// RSASSA-PKCS1-v1_5 with SHA-256: the FCM OAuth2 grant, from the service account's key.
    case rs256 = "RS256"
}

/// A private key read from PEM (PKCS#8 `BEGIN PRIVATE KEY`, as Apple's `.p8` files and Google's service accounts
/// hold them, or the older `BEGIN EC PRIVATE KEY` / `BEGIN RSA PRIVATE KEY`), and the signatures it makes, through
/// OpenSSL 3's EVP API. Every unsafe pointer of the notifiers' signatures stays in this file.
///
/// The key decides the algorithm: an EC key on P-256 signs ES256, an RSA key of 2048 bits or more RS256; any other
/// key is refused when read.
///
/// Sendable: OpenSSL 3 lets threads share a key that is no longer changed, each signing with its own context
/// (`EVP_MD_CTX`, made per signature here).
public final class SigningKey: @unchecked Sendable {
    /// The algorithm this key signs with.
    public let algorithm: JWTAlgorithm
    /// The `EVP_PKEY`, owned.
    private let key: OpaquePointer

    /// Reads the first private key in PEM text.
    ///
    /// - Throws: ``CredentialError/badKey(_:)`` when there is none (or it is encrypted: no passphrase is asked
    ///   for), ``CredentialError/wrongKeyType(_:)`` when it is neither EC P-256 nor RSA ≥ 2048 bits.
    public init(pem: some Collection<UInt8>) throws(CredentialError) {
        let bytes = Array(pem)
        guard bytes.count < Int(Int32.max) else { throw .badKey("PEM text too long") }
        let loaded: OpaquePointer? = bytes.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            // A callback that gives no passphrase: without one OpenSSL would prompt on the terminal for an
            // encrypted key, and a daemon would hang.
            return PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        guard let key = loaded else { throw .badKey("no private key in the PEM text (\(openSSLError()))") }
        // Decoders that were tried and did not match may have queued errors even on success; the queue is per
        // thread and TLS reads it (SSL_get_error), so leave it empty.
        ERR_clear_error()
        if EVP_PKEY_is_a(key, "EC") == 1 {
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            let named = EVP_PKEY_get_group_name(key, &name, name.count, &length) == 1
            let group = named ? String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            guard group == "prime256v1" || group == "P-256" else {
                EVP_PKEY_free(key)
                ERR_clear_error()
                throw .wrongKeyType("an EC key on \(group), ES256 needs P-256 (prime256v1)")
            }
            algorithm = .es256
        } else if EVP_PKEY_is_a(key, "RSA") == 1 {
            let bits = EVP_PKEY_get_bits(key)
            guard bits >= 2048 else {
                EVP_PKEY_free(key)
                throw .wrongKeyType("an RSA key of \(bits) bits, RS256 needs at least 2048")
            }
            algorithm = .rs256
        } else {
            let type = EVP_PKEY_get0_type_name(key).map { String(cString: $0) } ?? "unknown"
            EVP_PKEY_free(key)
            throw .wrongKeyType("a key of type \(type), expected EC P-256 or RSA")
        }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// The JWS signature of `message` (the ASCII `header.claims`) with SHA-256: for ES256 the 64 bytes `r ‖ s`
    /// (converted from OpenSSL's DER), for RS256 the PKCS#1 v1.5 signature, as long as the modulus.
    public func signature(_ message: [UInt8]) throws(CredentialError) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw .signingFailed("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, key) == 1 else {
            throw .signingFailed("EVP_DigestSignInit: \(openSSLError())")
        }
        var length = 0
        let signed = message.withUnsafeBufferPointer { input -> [UInt8]? in
            // First the largest size, then the signature itself (ECDSA's DER is often shorter than the maximum).
            guard EVP_DigestSign(context, nil, &length, input.baseAddress, input.count) == 1 else { return nil }
            var out = [UInt8](repeating: 0, count: length)
            guard EVP_DigestSign(context, &out, &length, input.baseAddress, input.count) == 1 else { return nil }
            out.removeSubrange(length...)
            return out
        }
        guard let signed else { throw .signingFailed("EVP_DigestSign: \(openSSLError())") }
        switch algorithm {
        case .rs256:
            return signed
        case .es256:
            guard let raw = ECDSASignature.raw(fromDER: signed, size: 32) else {
                throw .signingFailed("OpenSSL returned an ECDSA signature that is not DER")
            }
            return raw
        }
    }
}

/// The oldest error in this thread's OpenSSL queue as text, the queue then emptied; "no detail" when empty.
func openSSLError() -> String {
    let code = ERR_get_error()
    ERR_clear_error()
    guard code != 0 else { return "no detail" }
    var text = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(code, &text, text.count)
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
