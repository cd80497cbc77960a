/// A WebSocket frame's opcode (RFC 6455 §5.2). Other values are reserved and refused with 1002.
public enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// Close, ping and pong: at most 125 bytes of payload, never fragmented.
    public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// Writes WebSocket frames (RFC 6455 §5.2). Server frames are never masked and never fragmented: each pushgw
/// frame goes out as one binary message behind a 2-, 4- or 10-byte header.
public enum WebSocketFrame {
    /// Most payload bytes a control frame may carry.
    public static let maxControlPayload = 125

    /// The length of an unmasked frame header for a payload of `payloadLength` bytes: 2, 4 or 10.
    public static func headerLength(payloadLength: Int) -> Int {
        payloadLength < 126 ? 2 : payloadLength <= 0xFFFF ? 4 : 10
    }

    /// Appends the header of an unmasked, final (FIN) frame whose `payloadLength` bytes the caller appends next.
    public static func encodeHeader(_ opcode: WebSocketOpcode, payloadLength: Int, into buffer: inout [UInt8]) {
        buffer.append(0x80 | opcode.rawValue)
        appendLength(payloadLength, maskBit: 0, into: &buffer)
    }

    /// Appends a whole unmasked, final frame.
    public static func encode(_ opcode: WebSocketOpcode, payload: some Collection<UInt8>, into buffer: inout [UInt8]) {
        encodeHeader(opcode, payloadLength: payload.count, into: &buffer)
        buffer.append(contentsOf: payload)
    }

    /// Appends a close frame: the status code and `reason`, cut on a character boundary to fit the 125-byte limit.
    /// Without a code the payload is empty (the answer to a client close that gave none).
    public static func encodeClose(_ code: WebSocketCloseCode?, reason: String = "", into buffer: inout [UInt8]) {
        guard let code else { return encodeHeader(.close, payloadLength: 0, into: &buffer) }
        var text = Substring(reason)
        while text.utf8.count > maxControlPayload - 2 { text = text.dropLast() }
        var payload: [UInt8] = []
        payload.appendBigEndian(code.rawValue)
        payload.append(contentsOf: text.utf8)
        encode(.close, payload: payload, into: &buffer)
    }

    /// Appends a masked frame, as a client sends it (RFC 6455 §5.3); for tests and test clients. `fin: false`
    /// starts or continues a fragmented message; `rsv` sets the reserved bits (to build bad frames).
    public static func encodeMasked(
        _ opcode: WebSocketOpcode, payload: some Collection<UInt8>, mask: UInt32, fin: Bool = true, rsv: UInt8 = 0,
        into buffer: inout [UInt8]
    ) {
        buffer.append((fin ? 0x80 : 0) | (rsv & 0x7) << 4 | opcode.rawValue)
        appendLength(payload.count, maskBit: 0x80, into: &buffer)
        buffer.appendBigEndian(mask)
        for (index, byte) in payload.enumerated() {
            buffer.append(byte ^ UInt8(truncatingIfNeeded: mask >> (24 - 8 * UInt32(index & 3))))
        }
    }

    /// The second header byte and the extended length: 7 bits, or 126 + 16 bits, or 127 + 64 bits.
    private static func appendLength(_ length: Int, maskBit: UInt8, into buffer: inout [UInt8]) {
        if length < 126 {
            buffer.append(maskBit | UInt8(length))
        } else if length <= 0xFFFF {
            buffer.append(maskBit | 126)
            buffer.appendBigEndian(UInt16(length))
        } else {
            buffer.append(maskBit | 127)
            buffer.appendBigEndian(UInt32(truncatingIfNeeded: UInt64(length) >> 32))
            buffer.appendBigEndian(UInt32(truncatingIfNeeded: length))
        }
    }
}
