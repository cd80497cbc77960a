/// Small scanners over message bodies and HTTP replies: the bench reads only the few numbers it needs, in place.
enum ByteScan {
    /// The offset of the first occurrence of `needle` in `haystack` at or after `from`, else nil.
    @inline(__always)
    static func find(_ needle: StaticString, in haystack: UnsafeRawBufferPointer, from: Int = 0) -> Int? {
        let count = needle.utf8CodeUnitCount
        guard count > 0, haystack.count >= count else { return nil }
        let first = needle.utf8Start[0]
        var index = from
        let last = haystack.count - count
        while index <= last {
            if haystack[index] == first {
                var matched = 1
                while matched < count && haystack[index + matched] == needle.utf8Start[matched] { matched += 1 }
                if matched == count { return index }
            }
            index += 1
        }
        return nil
    }

    /// The unsigned integer whose digits start at `offset` (spaces skipped), and the offset after it.
    @inline(__always)
    static func number(in bytes: UnsafeRawBufferPointer, at offset: Int) -> (value: UInt64, end: Int)? {
        var index = offset
        while index < bytes.count && bytes[index] == UInt8(ascii: " ") { index += 1 }
        var value: UInt64 = 0
        let start = index
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
            value = value &* 10 &+ UInt64(bytes[index] - 48)
            index += 1
        }
        return index > start ? (value, index) : nil
    }

    /// The integer value of the member whose `"name":` is `key`, e.g. `"t":` in `{"t":123}`.
    @inline(__always)
    static func member(_ key: StaticString, in bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard let at = find(key, in: bytes) else { return nil }
        return number(in: bytes, at: at + key.utf8CodeUnitCount)?.value
    }

    /// The sum of the integer values of every `"online":{…}` object in a push reply (one per push of a batch).
    static func onlineSum(in bytes: UnsafeRawBufferPointer) -> Int {
        var total = 0
        var from = 0
        while let at = find("\"online\":{", in: bytes, from: from) {
            var index = at + 10
            while index < bytes.count && bytes[index] != UInt8(ascii: "}") {
                if bytes[index] == UInt8(ascii: ":"), let (value, end) = number(in: bytes, at: index + 1) {
                    total += Int(value)
                    index = end
                } else {
                    index += 1
                }
            }
            from = index
        }
        return total
    }

    /// How many times `needle` occurs.
    static func occurrences(_ needle: StaticString, in bytes: UnsafeRawBufferPointer) -> Int {
        var total = 0
        var from = 0
        while let at = find(needle, in: bytes, from: from) {
            total += 1
            from = at + needle.utf8CodeUnitCount
        }
        return total
    }
}

extension Array where Element == UInt8 {
    /// Appends the decimal digits of `value`.
    @inline(__always)
    mutating func appendDecimal(_ value: UInt64) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) + 48)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var index = 20
            var rest = value
            while rest > 0 {
                index -= 1
                buffer[index] = UInt8(truncatingIfNeeded: rest % 10) + 48
                rest /= 10
            }
            append(contentsOf: UnsafeMutableBufferPointer(rebasing: buffer[index...]))
        }
    }

    @inline(__always)
    mutating func appendDecimal(_ value: Int) { appendDecimal(UInt64(value)) }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
}
