extension Array where Element == UInt8 {
    /// Appends the decimal digits of `value` in ASCII. `String(value)` goes through the generic
    /// `BinaryInteger` description, which shows up in profiles of every push (script arguments, JSON answers).
    public mutating func appendDecimal(_ value: UInt64) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = value
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(truncatingIfNeeded: rest % 10) &+ UInt8(ascii: "0")
                rest /= 10
            } while rest > 0
            append(contentsOf: UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    /// Appends the decimal digits of `value` in ASCII, with a leading `-` when negative.
    public mutating func appendDecimal(_ value: Int) {
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDecimal(UInt64(value.magnitude))
    }
}
