/// Redis Cluster's key → slot mapping (SPEC §9): CRC16 (XMODEM: polynomial 0x1021, initial 0) of the key's hash
/// tag, or of the whole key when it has none, mod 16384. The hash tag is the text between the first `{` and the
/// first `}` after it, when that is not empty — `pg:{u:42}:inbox` and `pg:{u:42}:meta` share a slot.
/// (Redis's `keyHashSlot` in `cluster.c`, and the cluster specification.)
public enum RedisSlot {
    /// Slots in a Redis Cluster.
    public static let count = 16384

    /// The slot of `key`.
    public static func of(key: String) -> UInt16 { of(key: Array(key.utf8)) }

    /// The slot of `key`, as bytes.
    public static func of(key: [UInt8]) -> UInt16 {
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return crc16(key[(open + 1)..<close]) & UInt16(count - 1)
        }
        return crc16(key) & UInt16(count - 1)
    }

    /// A short hash tag whose slot is `slot`: `pg:notify:{<tag>}` is a key in that slot. The first decimal number
    /// (0, 1, 2, …) that hashes to each slot, found once for all 16,384 slots (about 170,000 CRC16s of a few bytes).
    public static func tag(of slot: UInt16) -> String { tags[Int(slot) & (count - 1)] }

    private static let tags: [String] = {
        var tags = [String?](repeating: nil, count: count)
        var missing = count
        var n = 0
        while missing > 0 {
            let text = String(n)
            let slot = Int(crc16(text.utf8) & UInt16(count - 1))
            if tags[slot] == nil {
                tags[slot] = text
                missing -= 1
            }
            n += 1
        }
        return tags.map { $0! }
    }()

    /// CRC16-CCITT (XMODEM), as Redis Cluster uses it: "123456789" → 0x31C3.
    public static func crc16<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes { crc = (crc << 8) ^ table[Int(UInt8(crc >> 8) ^ byte)] }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
