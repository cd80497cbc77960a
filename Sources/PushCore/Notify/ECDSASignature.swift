/// The two encodings of an ECDSA signature (r, s): OpenSSL's DER `SEQUENCE { INTEGER r, INTEGER s }` (RFC 3279)
/// and JWS's fixed-size `r ‖ s`, each big-endian and left-padded with zeros to the curve's size (RFC 7518 §3.4).
/// APNs refuses a provider token whose signature is DER.
public enum ECDSASignature {
    /// `r ‖ s` from DER, each `size` bytes (32 for P-256); nil when `der` is not one strict DER signature whose r and
    /// s are positive and fit in `size` bytes.
    ///
    /// DER writes integers in the fewest bytes, with a leading zero when the top bit is set, so r or s may take
    /// anything from 1 to `size + 1` bytes: a short one (about one signature in 128 has one) is padded back here.
    public static func raw(fromDER der: [UInt8], size: Int = 32) -> [UInt8]? {
        var reader = DERReader(bytes: der[...])
        guard var sequence = reader.element(tag: 0x30), reader.isAtEnd,
            let r = sequence.element(tag: 0x02), let s = sequence.element(tag: 0x02), sequence.isAtEnd,
            let rBytes = unsignedInteger(r.bytes, size: size), let sBytes = unsignedInteger(s.bytes, size: size)
        else { return nil }
        return rBytes + sBytes
    }

    /// A DER INTEGER's content as `size` big-endian bytes, if it is minimal, positive and fits.
    private static func unsignedInteger(_ content: ArraySlice<UInt8>, size: Int) -> [UInt8]? {
        guard let first = content.first, first & 0x80 == 0 else { return nil }  // empty or negative
        var digits = content
        if first == 0 {
            // A leading zero is allowed only to keep the next byte's top bit from reading as a sign.
            guard digits.count == 1 || digits[digits.startIndex + 1] & 0x80 != 0 else { return nil }
            digits = digits.dropFirst()
        }
        guard digits.count <= size else { return nil }
        return [UInt8](repeating: 0, count: size - digits.count) + digits
    }
}

/// Reads DER tag-length-value elements with definite lengths.
private struct DERReader {
    var bytes: ArraySlice<UInt8>

    var isAtEnd: Bool { bytes.isEmpty }

    /// The next element if it has `tag`: a reader over its content.
    mutating func element(tag: UInt8) -> DERReader? {
        guard bytes.count >= 2, bytes.first == tag else { return nil }
        var rest = bytes.dropFirst()
        let lengthByte = rest.removeFirst()
        var length = 0
        if lengthByte < 0x80 {
            length = Int(lengthByte)
        } else {
            // Long form: 1 or 2 length bytes are plenty here, and DER forbids the long form below 128.
            let count = Int(lengthByte & 0x7F)
            guard count >= 1, count <= 2, rest.count >= count, rest.first != 0 else { return nil }
            for _ in 0..<count { length = length << 8 | Int(rest.removeFirst()) }
            guard length >= 0x80 else { return nil }
        }
        guard rest.count >= length else { return nil }
        let content = rest.prefix(length)
        bytes = rest.dropFirst(length)
        return DERReader(bytes: content)
    }
}
