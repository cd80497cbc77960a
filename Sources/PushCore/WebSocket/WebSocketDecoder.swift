/// Reads the frames a WebSocket client sends (RFC 6455 §5) from a byte stream cut anywhere, and hands out what
/// they mean: the unmasked payload bytes of binary messages, piece by piece as they arrive (they are the pushgw
/// frame stream, which has its own framing, so message boundaries do not matter), and the control frames.
/// Payload bytes are unmasked in place and never copied; only a partial header (at most 14 bytes) and a control
/// frame's payload (at most 125) are kept between reads.
public struct WebSocketDecoder: Sendable {
    /// What a client's frames mean.
    public enum Event {
        /// Payload bytes of a binary message or of its continuation frames, unmasked, valid during the call.
        case binary(UnsafeRawBufferPointer)
        /// A ping: answer a pong with the same payload.
        case ping([UInt8])
        /// A pong (unsolicited or not): nothing to do.
        case pong
        /// The client closes, with the status code it gave (if any) and its reason.
        case close(WebSocketCloseCode?, String)
    }

    /// The largest binary message accepted, all fragments together; past it the client gets 1009.
    public let maxMessage: Int
    /// A close frame was read: the decoder reads nothing more.
    public private(set) var isClosed = false

    /// The bytes of a header not yet complete; empty (unallocated) otherwise.
    private var header: [UInt8] = []
    /// The frame whose payload is being read, if any.
    private var opcode = WebSocketOpcode.binary
    private var inFrame = false
    private var fin = false
    /// Payload bytes of the current frame still to come.
    private var remaining: UInt64 = 0
    /// The masking key, big-endian as on the wire, and where in it the next payload byte falls.
    private var mask: UInt32 = 0
    private var maskOffset = 0
    /// A fragmented binary message is open: the next data frame must be a continuation.
    private var inMessage = false
    /// Payload bytes of the current message so far.
    private var messageLength: UInt64 = 0
    /// The payload of the current control frame.
    private var control: [UInt8] = []

    public init(maxMessage: Int) {
        self.maxMessage = maxMessage
    }

    /// The message size limit for a gateway whose `limits.max_frame` is `maxFrame`: twice that, so a client may
    /// put a few whole frames in one message; each pushgw frame inside is still held to `max_frame`.
    public static func messageLimit(maxFrame: Int) -> Int { 2 * maxFrame }

    /// Feeds `bytes`, unmasking payloads in place, and calls `onEvent` for what they hold, in order. `onEvent`
    /// returns false to stop (the connection is closing); the rest is dropped. Throws the first violation;
    /// bytes after it are never looked at.
    public mutating func feed(_ bytes: UnsafeMutableRawBufferPointer, _ onEvent: (Event) throws -> Bool) throws {
        var offset = 0
        while !isClosed {
            if !inFrame {
                guard let used = try readHeader(UnsafeRawBufferPointer(rebasing: bytes[offset...])) else { return }
                offset += used
            } else if remaining > 0 {
                guard offset < bytes.count else { return }
                let take = Int(min(remaining, UInt64(bytes.count - offset)))
                let payload = UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<offset + take])
                Self.unmask(payload, key: mask, offset: maskOffset)
                maskOffset = (maskOffset + take) & 3
                remaining -= UInt64(take)
                offset += take
                if opcode.isControl {
                    control.append(contentsOf: payload)
                } else if try !onEvent(.binary(UnsafeRawBufferPointer(payload))) {
                    return
                }
            }
            if inFrame && remaining == 0 {
                guard try endFrame(onEvent) else { return }
            }
        }
    }

    // MARK: - Header

    /// Reads (the rest of) a frame header from the start of `bytes`; returns how many bytes it used, or nil
    /// when they all went into a header still incomplete.
    private mutating func readHeader(_ bytes: UnsafeRawBufferPointer) throws -> Int? {
        if header.isEmpty, bytes.count >= 2 {
            try Self.check(bytes[0], bytes[1], inMessage: inMessage)
            let size = Self.headerSize(bytes[1])
            if bytes.count >= size {
                try start(UnsafeRawBufferPointer(rebasing: bytes[..<size]))
                return size
            }
        }
        // Slow path: the header is cut; keep its bytes (never more than the header needs).
        var used = 0
        while used < bytes.count {
            let size = header.count >= 2 ? Self.headerSize(header[1]) : 2
            let take = min(size - header.count, bytes.count - used)
            header.append(contentsOf: bytes[used..<used + take])
            used += take
            if header.count == 2 { try Self.check(header[0], header[1], inMessage: inMessage) }
            if header.count >= 2 && header.count == Self.headerSize(header[1]) {
                try header.withUnsafeBytes { try start($0) }
                header = []
                return used
            }
        }
        return nil
    }

    /// Header bytes for a client frame whose second byte is `second`: 2, plus 2 or 8 of extended length, plus 4 of
    /// masking key.
    private static func headerSize(_ second: UInt8) -> Int {
        switch second & 0x7F {
        case 126: 2 + 2 + 4
        case 127: 2 + 8 + 4
        default: 2 + 4
        }
    }

    /// The checks the first two bytes allow, done as soon as they are in.
    private static func check(_ first: UInt8, _ second: UInt8, inMessage: Bool) throws {
        guard first & 0x70 == 0 else {
            throw WebSocketError.protocolError("reserved bits set: no extension was agreed")
        }
        guard let opcode = WebSocketOpcode(rawValue: first & 0x0F) else {
            throw WebSocketError.protocolError("reserved opcode \(first & 0x0F)")
        }
        guard second & 0x80 != 0 else { throw WebSocketError.protocolError("client frames must be masked") }
        let fin = first & 0x80 != 0
        if opcode.isControl {
            guard fin else { throw WebSocketError.protocolError("fragmented control frame") }
            guard second & 0x7F <= WebSocketFrame.maxControlPayload else {
                throw WebSocketError.protocolError("control frame over 125 bytes")
            }
            return
        }
        switch opcode {
        case .continuation where !inMessage:
            throw WebSocketError.protocolError("continuation frame outside a fragmented message")
        case .binary where inMessage, .text where inMessage:
            throw WebSocketError.protocolError("new message inside a fragmented one")
        case .text:
            throw WebSocketError(.unsupportedData, "text messages are not served: send binary messages")
        default:
            break
        }
    }

    /// Takes a whole header (already checked by `check`): the length, the masking key, the size limit.
    private mutating func start(_ bytes: UnsafeRawBufferPointer) throws {
        opcode = WebSocketOpcode(rawValue: bytes[0] & 0x0F)!
        fin = bytes[0] & 0x80 != 0
        var length = UInt64(bytes[1] & 0x7F)
        var at = 2
        if length == 126 {
            length = UInt64(bytes.loadBigEndianUInt16(at: 2))
            at = 4
        } else if length == 127 {
            length = UInt64(bytes.loadBigEndianUInt32(at: 2)) << 32 | UInt64(bytes.loadBigEndianUInt32(at: 6))
            guard length >> 63 == 0 else { throw WebSocketError.protocolError("64-bit length with its top bit set") }
            at = 10
        }
        if !opcode.isControl {
            // messageLength never passes maxMessage: this cannot underflow.
            guard length <= UInt64(maxMessage) - messageLength else {
                throw WebSocketError(.messageTooBig, "message over \(maxMessage) bytes")
            }
            messageLength += length
        }
        mask = bytes.loadBigEndianUInt32(at: at)
        maskOffset = 0
        remaining = length
        inFrame = true
    }

    // MARK: - Frame end

    /// The current frame's payload is all in: ends the message or answers the control frame. Returns false to
    /// stop.
    private mutating func endFrame(_ onEvent: (Event) throws -> Bool) throws -> Bool {
        inFrame = false
        switch opcode {
        case .binary, .continuation, .text:
            inMessage = !fin
            if fin { messageLength = 0 }
            return true
        case .ping:
            let payload = control
            control = []
            return try onEvent(.ping(payload))
        case .pong:
            control = []
            return try onEvent(.pong)
        case .close:
            let payload = control
            control = []
            isClosed = true
            let (code, reason) = try Self.closePayload(payload)
            _ = try onEvent(.close(code, reason))
            return false
        }
    }

    /// A close frame's payload: nothing, or a valid status code then a UTF-8 reason.
    private static func closePayload(_ payload: [UInt8]) throws -> (WebSocketCloseCode?, String) {
        guard !payload.isEmpty else { return (nil, "") }
        guard payload.count >= 2 else { throw WebSocketError.protocolError("close frame with a 1-byte payload") }
        let code = WebSocketCloseCode(UInt16(payload[0]) << 8 | UInt16(payload[1]))
        guard code.isValidInFrame else { throw WebSocketError.protocolError("close status \(code) is not allowed") }
        guard let reason = String(validating: payload[2...], as: UTF8.self) else {
            throw WebSocketError(.invalidPayload, "close reason is not UTF-8")
        }
        return (code, reason)
    }

    // MARK: - Unmasking

    /// XORs `bytes` with the masking key, starting `offset` bytes into it; 8 bytes at a time.
    static func unmask(_ bytes: UnsafeMutableRawBufferPointer, key: UInt32, offset: Int) {
        guard !bytes.isEmpty else { return }
        // The key rotated so that its byte `offset` comes first, then repeated over 8 bytes in memory order.
        let shift = UInt32(8 * (offset & 3))
        let rotated = shift == 0 ? key : key << shift | key >> (32 - shift)
        var pattern: UInt64 = 0
        withUnsafeMutableBytes(of: &pattern) { word in
            for index in 0..<8 { word[index] = UInt8(truncatingIfNeeded: rotated >> (24 - 8 * UInt32(index & 3))) }
        }
        var index = 0
        while bytes.count - index >= 8 {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            bytes.storeBytes(of: word ^ pattern, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        withUnsafeBytes(of: pattern) { pattern in
            while index < bytes.count {
                bytes[index] ^= pattern[index & 7]
                index += 1
            }
        }
    }
}
