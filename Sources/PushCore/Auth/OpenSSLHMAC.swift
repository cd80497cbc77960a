internal import COpenSSL

/// HMAC-SHA256 (RFC 2104, FIPS 180-4) through OpenSSL 3: under `auth.secret` for device tokens (SPEC §4), under
/// `notify.webhook_secret` for the signature of webhook notifications (SPEC §10).
public struct OpenSSLHMAC: MessageAuthenticator {
    /// The secret. HMAC accepts any length; keys longer than SHA-256's 64-byte block are hashed first.
    private let key: [UInt8]

    /// A key of these bytes.
    public init(key: [UInt8]) {
        precondition(key.count <= Int(Int32.max), "HMAC key too long")
        self.key = key
    }

    /// A key of the UTF-8 bytes of `secret`.
    public init(secret: String) {
        self.init(key: Array(secret.utf8))
    }

    /// HMAC-SHA256(key, message): 32 bytes.
    ///
    /// Traps if OpenSSL fails, which with SHA-256 happens only on a broken installation (or a FIPS provider
    /// refusing a short key): a token signed with an empty or partial MAC would be worse than stopping.
    public func mac(_ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = Self.withBytes(key) { keyPointer, keyCount in
            Self.withBytes(message) { messagePointer, messageCount in
                out.withUnsafeMutableBufferPointer { outBuffer in
                    // One-shot HMAC: a few microseconds per token, no context to keep or free.
                    HMAC(
                        EVP_sha256(), keyPointer, Int32(keyCount), messagePointer, messageCount,
                        outBuffer.baseAddress, &length) != nil
                }
            }
        }
        precondition(ok && length == 32, "OpenSSL HMAC-SHA256 failed (error \(ERR_get_error()))")
        out.removeSubrange(Int(length)...)
        return out
    }

    /// Constant-time comparison through `CRYPTO_memcmp`, which reads every byte whatever it finds. A length
    /// mismatch answers false at once: a MAC's length is public (32 bytes), only its content is secret.
    public func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { aBytes in
            b.withUnsafeBytes { bBytes in
                CRYPTO_memcmp(aBytes.baseAddress, bBytes.baseAddress, aBytes.count) == 0
            }
        }
    }

    /// Calls `body` with a non-null pointer to `bytes` and their count: OpenSSL may refuse a null pointer even
    /// with length 0, and an empty Swift array has no base address.
    private static func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        if bytes.isEmpty {
            var placeholder: UInt8 = 0
            return withUnsafePointer(to: &placeholder) { body($0, 0) }
        }
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
