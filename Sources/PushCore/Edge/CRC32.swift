/// CRC-32 as zlib, PNG and Ethernet compute it (polynomial 0xEDB88320 reflected, initial and final 0xFFFFFFFF):
/// "123456789" → 0xCBF43926. The stable hash of the route rules, chosen because every backend language has it
/// (`zlib.crc32`, Go's `hash/crc32`, Java's `CRC32`, PHP's `crc32`), so a backend can tell which users are in a
/// rollout; Swift's `Hasher` is seeded per process and would put a user in a different bucket on every node.
public enum CRC32 {
    /// The checksum of `bytes`.
    public static func checksum<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = (crc >> 8) ^ table[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] }
        return ~crc
    }

    private static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        return crc
    }
}
