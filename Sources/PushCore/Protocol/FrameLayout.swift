/// The fixed 16-byte frame header of SPEC §2 (goim's layout), all integers big-endian.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | packet length: whole frame, header included |
/// | 4 | 2 | header length: 16 |
/// | 6 | 2 | version: 1 |
/// | 8 | 4 | operation |
/// | 12 | 4 | sequence |
public enum FrameLayout {
    public static let headerLength = 16
    public static let version: UInt16 = 1
    /// `limits.max_frame` default: the largest whole frame, header included.
    public static let defaultMaxFrame = 65_536

    static let packetLengthOffset = 0
    static let headerLengthOffset = 4
    static let versionOffset = 6
    static let operationOffset = 8
    static let sequenceOffset = 12
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func loadBigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8
            | UInt32(self[offset + 3])
    }

    @inline(__always)
    func loadBigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` as 4 (or 2) big-endian bytes, the wire order of every frame integer.
    @inline(__always)
    public mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    public mutating func appendBigEndian(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
}
