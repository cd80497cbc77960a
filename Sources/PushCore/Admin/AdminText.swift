/// Client-chosen text (user ids, device keys, platforms, rooms) as the admin socket prints it: one token of a
/// `name=value` line. Bytes that could end or split a line or a field, or fake the `.` terminator — controls, space,
/// `=`, `\\`, DEL — become `\\xNN`; other UTF-8 is kept. An empty value prints as `-`, and a value that is `.` or
/// `-` itself is escaped, so no field can be taken for another, nor a line for the end of a reply.
public enum AdminText {
    public static func escape(_ text: String) -> String {
        if text.isEmpty { return "-" }
        if text == "-" || text == "." { return "\\x" + hex(text.utf8.first!) }
        guard text.utf8.contains(where: needsEscape) else { return text }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 8)
        for byte in text.utf8 {
            if needsEscape(byte) {
                bytes.append(contentsOf: "\\x".utf8)
                bytes.append(contentsOf: hex(byte).utf8)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "\\")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }
}
