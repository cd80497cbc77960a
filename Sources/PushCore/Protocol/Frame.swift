/// One decoded frame: its operation, sequence and body. The version field is not kept: any version is
/// accepted on input and 1 is written on output.
public struct Frame: Equatable, Sendable {
    public var operation: Operation
    public var sequence: UInt32
    public var body: [UInt8]

    public init(_ operation: Operation, sequence: UInt32 = 0, body: [UInt8] = []) {
        self.operation = operation
        self.sequence = sequence
        self.body = body
    }

    public init(_ operation: Operation, sequence: UInt32 = 0, text: String) {
        self.init(operation, sequence: sequence, body: Array(text.utf8))
    }

    /// The whole frame's length on the wire, header included.
    public var encodedLength: Int { FrameLayout.headerLength + body.count }

    /// Appends this frame's wire form to `buffer`.
    public func encode(into buffer: inout [UInt8]) {
        Frame.encode(operation: operation, sequence: sequence, body: body, into: &buffer)
    }

    /// The wire form as a new array.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encodedLength)
        encode(into: &out)
        return out
    }

    /// Appends a frame's header and `body` to `buffer` without building a `Frame` first.
    public static func encode<Body: Collection<UInt8>>(
        operation: Operation, sequence: UInt32, body: Body, into buffer: inout [UInt8]
    ) {
        encodeHeader(operation: operation, sequence: sequence, bodyLength: body.count, into: &buffer)
        buffer.append(contentsOf: body)
    }

    /// One frame's wire form as a new array, `body` copied once: a push is encoded once for all its receivers.
    public static func encoded<Body: Collection<UInt8>>(
        operation: Operation, sequence: UInt32 = 0, body: Body
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(FrameLayout.headerLength + body.count)
        encode(operation: operation, sequence: sequence, body: body, into: &out)
        return out
    }

    /// Appends a stored message as the frame a client receives it in: its op, its seq (the low 32 bits) and its
    /// payload.
    public static func encode(_ message: StoredMessage, into buffer: inout [UInt8]) {
        encode(
            operation: Operation(message.op), sequence: UInt32(truncatingIfNeeded: message.seq), body: message.payload,
            into: &buffer)
    }

    /// The length on the wire of `message` as a frame.
    public static func encodedLength(of message: StoredMessage) -> Int {
        FrameLayout.headerLength + message.payload.count
    }

    /// Appends only the 16-byte header of a frame whose body of `bodyLength` bytes follows.
    public static func encodeHeader(operation: Operation, sequence: UInt32, bodyLength: Int, into buffer: inout [UInt8]) {
        buffer.appendBigEndian(UInt32(FrameLayout.headerLength + bodyLength))
        buffer.appendBigEndian(UInt16(FrameLayout.headerLength))
        buffer.appendBigEndian(FrameLayout.version)
        buffer.appendBigEndian(operation.rawValue)
        buffer.appendBigEndian(sequence)
    }
}
