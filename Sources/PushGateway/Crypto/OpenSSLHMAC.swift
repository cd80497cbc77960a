import COpenSSL
import PushCore

/// HMAC-SHA256 under `auth.secret`, through OpenSSL 3, for device tokens (SPEC §4). Every unsafe pointer the
/// gateway hands to OpenSSL's crypto stays in this file.
struct OpenSSLHMAC: MessageAuthenticator {
    /// The secret. HMAC accepts any length; keys longer than SHA-256's 64-byte block are hashed first.
    private let key: [UInt8]

    init(key: [UInt8]) {
        precondition(key.count <= Int(Int32.max), "HMAC key too long")
        self.key = key
    }

    init(secret: String) {
        self.init(key: Array(secret.utf8))
    }

    /// HMAC-SHA256(key, message): 32 bytes.
    ///
    /// Traps if OpenSSL fails, which with SHA-256 happens only on a broken installation (or a FIPS provider
    /// refusing a short key): a token signed with an empty or partial MAC would be worse than stopping.
    func mac(_ message: [UInt8]) -> [UInt8] {
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
    func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
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

/// `n` cryptographically secure random bytes from OpenSSL's DRBG, for device keys, connection ids and secrets.
///
/// Traps if the generator cannot be seeded: predictable "random" keys would be worse than stopping.
func randomBytes(_ n: Int) -> [UInt8] {
    precondition(n >= 0 && n <= Int(Int32.max), "randomBytes: bad count \(n)")
    var out = [UInt8](repeating: 0, count: n)
    guard n > 0 else { return out }
    let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(n)) == 1 }
    precondition(ok, "OpenSSL RAND_bytes failed (error \(ERR_get_error()))")
    return out
}
