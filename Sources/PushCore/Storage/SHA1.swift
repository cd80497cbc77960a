/// SHA-1 (FIPS 180-4), small and pure Swift: Redis names a loaded script by the SHA-1 of its source, so pushgw can
/// send EVALSHA without a SCRIPT LOAD round trip first. Not for anything secret: SHA-1 is broken for collisions.
public enum SHA1 {
    /// The 20-byte digest of `bytes`.
    public static func digest(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        if let digest = bytes.withContiguousStorageIfAvailable({ digest(buffer: $0) }) { return digest }
        return Array(bytes).withUnsafeBufferPointer { digest(buffer: $0) }
    }

    private typealias State = (UInt32, UInt32, UInt32, UInt32, UInt32)

    private static func digest(buffer: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var state: State = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        let whole = buffer.count - buffer.count % 64
        for offset in stride(from: 0, to: whole, by: 64) {
            compress(UnsafeBufferPointer(rebasing: buffer[offset..<offset + 64]), into: &state)
        }
        // Padding: 0x80, zeros to 56 mod 64, then the message length in bits, big-endian: one or two more blocks.
        var tail = Array(buffer[whole...])
        tail.append(0x80)
        tail.append(contentsOf: repeatElement(0, count: (120 - tail.count) % 64))
        let bits = UInt64(buffer.count) &* 8
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> shift)) }
        tail.withUnsafeBufferPointer { tail in
            for offset in stride(from: 0, to: tail.count, by: 64) {
                compress(UnsafeBufferPointer(rebasing: tail[offset..<offset + 64]), into: &state)
            }
        }

        var out: [UInt8] = []
        out.reserveCapacity(20)
        for word in [state.0, state.1, state.2, state.3, state.4] {
            out.append(contentsOf: [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: word >> $0) })
        }
        return out
    }

    /// The digest as 40 lowercase hex digits, as Redis prints script SHAs.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(40)
        for byte in digest(bytes) {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// One 64-byte block. The message schedule lives on the stack: a heap array per block would dominate.
    private static func compress(_ block: UnsafeBufferPointer<UInt8>, into state: inout State) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for i in 0..<16 {
                w[i] =
                    UInt32(block[4 * i]) << 24 | UInt32(block[4 * i + 1]) << 16 | UInt32(block[4 * i + 2]) << 8
                    | UInt32(block[4 * i + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = state
            for i in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let t = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, t)
            }
            state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
        }
    }
}

/// The hash of a push body recorded with its idempotency key (`pg:idem:<id>` field `h`): a second push with the
/// same key and another body is a conflict (409). SHA-1 hex; collisions would need a deliberate attack by the
/// backend against itself.
public func bodyHash(_ bytes: some Sequence<UInt8>) -> String {
    SHA1.hex(bytes)
}
