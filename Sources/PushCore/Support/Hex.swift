/// Lowercase hexadecimal text of bytes, two digits a byte: how signatures and digests are shown on the wire
/// (`x-pushgw-signature: sha256=<hex>`).
public enum Hex {
    /// `bytes` as lowercase hex digits.
    public static func lowercase(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
