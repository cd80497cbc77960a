/// Splits a TCP byte stream into frames (SPEC §2). Bytes arrive in arbitrary chunks; only the tail of a
/// partial frame is copied and kept, so an idle connection holds no buffer at all.
public struct FrameDecoder: Sendable {
    /// The bytes of a frame not yet complete; empty (and unallocated) between frames.
    public private(set) var pending: [UInt8] = []
    public init() {}

    /// Whether a frame is partially received.
    public var hasPartialFrame: Bool { !pending.isEmpty }

    /// Feeds `bytes` and calls `onFrame` for each complete frame, in order. `onFrame` returns `false` to stop
    /// decoding (the connection is closing); the remaining bytes are then dropped. Throws the first protocol
    /// violation; bytes after it are never looked at. `maxFrame` (`limits.max_frame`, the largest whole frame
    /// accepted) is passed in rather than kept: one decoder per connection, one limit per server.
    public mutating func feed(
        _ bytes: UnsafeRawBufferPointer, maxFrame: Int = FrameLayout.defaultMaxFrame, _ onFrame: (Frame) throws -> Bool
    ) throws {
        if pending.isEmpty {
            let used = try Self.decode(bytes, maxFrame: maxFrame, onFrame)
            if used < bytes.count { pending = Array(bytes[used...]) }
            return
        }
        // Complete the pending frame first: take only what it still needs, so a flood never grows the buffer.
        var input = bytes[...]
        while !input.isEmpty {
            let need = try neededForPending(maxFrame: maxFrame)
            let take = min(need, input.count)
            pending.append(contentsOf: input.prefix(take))
            input = input.dropFirst(take)
            // Checking again validates the length and header fields as soon as their bytes are in.
            if try neededForPending(maxFrame: maxFrame) == 0 {
                let frame = pending.withUnsafeBytes { Self.frame(in: $0) }
                pending = []
                guard try onFrame(frame) else { return }
                let rest = UnsafeRawBufferPointer(rebasing: input)
                let used = try Self.decode(rest, maxFrame: maxFrame, onFrame)
                if used < rest.count { pending = Array(rest[used...]) }
                return
            }
        }
    }

    /// How many more bytes the pending partial frame needs (0 when it is complete); throws as soon as the
    /// bytes present show a bad header.
    private func neededForPending(maxFrame: Int) throws -> Int {
        guard pending.count >= FrameLayout.headerLength else {
            // Validate the length as soon as its 4 bytes are in, so a bad header is caught early.
            if pending.count >= 4 {
                _ = try pending.withUnsafeBytes { try Self.validatedLength($0, maxFrame: maxFrame) }
            }
            return FrameLayout.headerLength - pending.count
        }
        let length = try pending.withUnsafeBytes { try Self.validatedLength($0, maxFrame: maxFrame) }
        return length - pending.count
    }

    /// Decodes every whole frame at the start of `bytes`; returns how many bytes they used.
    private static func decode(
        _ bytes: UnsafeRawBufferPointer, maxFrame: Int, _ onFrame: (Frame) throws -> Bool
    ) throws -> Int {
        var offset = 0
        while bytes.count - offset >= 4 {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            let length = try validatedLength(rest, maxFrame: maxFrame)
            guard rest.count >= length else { break }
            let frame = frame(in: UnsafeRawBufferPointer(rebasing: rest[..<length]))
            offset += length
            guard try onFrame(frame) else { return bytes.count }
        }
        return offset
    }

    /// Reads and checks the packet length (and, once present, the header length) of the frame at the start.
    private static func validatedLength(_ bytes: UnsafeRawBufferPointer, maxFrame: Int) throws -> Int {
        let length = bytes.loadBigEndianUInt32(at: FrameLayout.packetLengthOffset)
        if length < FrameLayout.headerLength { throw ProtocolError.badLength(length) }
        if length > maxFrame { throw ProtocolError.frameTooLarge(length, limit: maxFrame) }
        if bytes.count >= FrameLayout.headerLengthOffset + 2 {
            let headerLength = bytes.loadBigEndianUInt16(at: FrameLayout.headerLengthOffset)
            if headerLength != FrameLayout.headerLength { throw ProtocolError.badHeader(headerLength) }
        }
        return Int(length)
    }

    /// Builds the frame held by exactly `bytes` (already validated).
    private static func frame(in bytes: UnsafeRawBufferPointer) -> Frame {
        Frame(
            Operation(bytes.loadBigEndianUInt32(at: FrameLayout.operationOffset)),
            sequence: bytes.loadBigEndianUInt32(at: FrameLayout.sequenceOffset),
            body: bytes.count > FrameLayout.headerLength ? Array(bytes[FrameLayout.headerLength...]) : []
        )
    }
}
