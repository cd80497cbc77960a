internal import COpenSSL

/// SHA-1 (FIPS 180-4) from OpenSSL's libcrypto: Redis names a loaded script by the SHA-1 of its source, so pushgw
/// can send EVALSHA without a SCRIPT LOAD round trip first, and the WebSocket handshake (RFC 6455) answers with one.
/// Not for anything secret: SHA-1 is broken for collisions.
public enum SHA1 {
    /// The 20-byte digest of `bytes`.
    public static func digest(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 20) { out, count in
            hash(bytes, into: out)
            count = 20
        }
    }

    /// The digest as 40 lowercase hex digits, as Redis prints script SHAs.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digest in
            hash(bytes, into: digest)
            return String(unsafeUninitializedCapacity: 40) { text in
                digits.withUTF8Buffer { digits in
                    for (index, byte) in digest.enumerated() {
                        text[2 * index] = digits[Int(byte >> 4)]
                        text[2 * index + 1] = digits[Int(byte & 0x0F)]
                    }
                }
                return 40
            }
        }
    }

    /// Writes the digest of `bytes` to the first 20 bytes of `out`; input without contiguous storage is copied once.
    private static func hash(_ bytes: some Sequence<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>) {
        if bytes.withContiguousStorageIfAvailable({ hash(buffer: $0, into: out) }) != nil { return }
        Array(bytes).withUnsafeBufferPointer { hash(buffer: $0, into: out) }
    }

    private static func hash(buffer: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>) {
        var length: UInt32 = 0
        // EVP_Digest fails only when libcrypto cannot allocate or has no SHA-1 (a FIPS-only build): nothing to
        // recover from, and a wrong SHA would fail silently much later.
        guard EVP_Digest(buffer.baseAddress, buffer.count, out.baseAddress, &length, EVP_sha1(), nil) == 1,
            length == 20
        else { fatalError("OpenSSL EVP_Digest(SHA-1) failed") }
    }
}

/// The hash of a push body recorded with its idempotency key (`<seq>:<hash>` in `pg:{u:<uid>}:idem:…`): a second
/// push with the same key and another body is a conflict (409). SHA-1 hex; collisions would need a deliberate attack by the
/// backend against itself.
public func bodyHash(_ bytes: some Sequence<UInt8>) -> String {
    SHA1.hex(bytes)
}
