/// The Redis serialization protocol, version 2: commands out, replies in.
/// See https://redis.io/docs/latest/develop/reference/protocol-spec/.
public enum RESP {
    /// A command as a multi-bulk request: `*<n>\r\n` then `$<len>\r\n<bytes>\r\n` for each argument.
    public static func encodeCommand(_ args: [[UInt8]]) -> [UInt8] {
        var out = Array("*\(args.count)\r\n".utf8)
        out.reserveCapacity(out.count + args.reduce(0) { $0 + $1.count + 16 })
        for arg in args {
            out.append(contentsOf: "$\(arg.count)\r\n".utf8)
            out.append(contentsOf: arg)
            out.append(contentsOf: crlf)
        }
        return out
    }

    /// ``encodeCommand(_:)-([[UInt8]])`` for text arguments.
    public static func encodeCommand(_ args: [String]) -> [UInt8] {
        encodeCommand(args.map { Array($0.utf8) })
    }

    static let crlf: [UInt8] = [13, 10]
}

/// Why a byte stream is not RESP: the connection it came from cannot be trusted any more and must be closed.
public struct RESPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was wrong, and at which byte of the stream.
    public let message: String

    init(_ message: String, at offset: Int) {
        self.message = "\(message) at stream byte \(offset)"
    }

    public var description: String { "malformed RESP: \(message)" }
}

/// Decodes RESP2 replies from a byte stream cut anywhere: feed what the socket read, then take replies with
/// ``next()`` until it returns nil (an incomplete reply waits for more bytes).
///
/// A partial reply is re-parsed from its start on the next call; only headers are re-scanned, bulk payloads are
/// copied once, when complete.
public struct RESPDecoder: Sendable {
    /// Longest simple string, error or integer line accepted (Redis's own inline limit is 64 KiB).
    public var maxLineLength = 64 * 1024
    /// Largest bulk string accepted (Redis's `proto-max-bulk-len` default, 512 MiB).
    public var maxBulkLength = 512 * 1024 * 1024
    /// Deepest nesting of arrays accepted, so hostile input cannot exhaust the stack.
    public var maxDepth = 32

    private var buffer: [UInt8] = []
    private var start = 0
    /// Stream offset of `buffer[0]`, for error messages.
    private var consumedBefore = 0

    public init() {}

    /// Bytes received and not yet decoded into replies.
    public var bufferedCount: Int { buffer.count - start }

    /// Appends bytes read from the connection.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        // Drop decoded bytes once they are most of the buffer, so memory follows what is pending.
        if start > 0, start >= buffer.count / 2 {
            buffer.removeSubrange(..<start)
            consumedBefore += start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete reply, or nil when more bytes are needed. Throws ``RESPError`` on malformed input; the
    /// decoder is then unusable (the stream position is lost).
    public mutating func next() throws -> RedisValue? {
        var index = start
        guard let value = try parse(at: &index, depth: 0) else { return nil }
        start = index
        return value
    }

    private func parse(at index: inout Int, depth: Int) throws -> RedisValue? {
        guard index < buffer.count else { return nil }
        let type = buffer[index]
        let typeOffset = index
        guard let line = try line(after: index + 1) else { return nil }
        index = line.upperBound + 2
        switch type {
        case UInt8(ascii: "+"):
            return .status(String(decoding: buffer[line], as: UTF8.self))
        case UInt8(ascii: "-"):
            return .error(String(decoding: buffer[line], as: UTF8.self))
        case UInt8(ascii: ":"):
            guard let value = Int64(decimal: buffer[line]) else { throw bad("integer", line) }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int64(decimal: buffer[line]), length >= -1, length <= Int64(maxBulkLength) else {
                throw bad("bulk length", line)
            }
            if length == -1 { return .null }
            let end = index + Int(length)
            guard end + 2 <= buffer.count else { return nil }
            guard buffer[end] == 13, buffer[end + 1] == 10 else {
                throw RESPError("bulk string of \(length) bytes not followed by CRLF", at: consumedBefore + end)
            }
            let bytes = Array(buffer[index..<end])
            index = end + 2
            return .string(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int64(decimal: buffer[line]), count >= -1, count <= Int64(Int32.max) else {
                throw bad("array length", line)
            }
            if count == -1 { return .null }
            guard depth < maxDepth else {
                throw RESPError("arrays nested deeper than \(maxDepth)", at: consumedBefore + typeOffset)
            }
            var elements: [RedisValue] = []
            // Every element takes at least 3 bytes: do not trust a huge count with a huge allocation.
            elements.reserveCapacity(min(Int(count), (buffer.count - index) / 3))
            for _ in 0..<count {
                guard let element = try parse(at: &index, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return .array(elements)
        default:
            throw RESPError("unknown reply type byte \(type)", at: consumedBefore + typeOffset)
        }
    }

    /// The line that starts at `from` and ends before the next CRLF, or nil when the CRLF has not arrived yet.
    private func line(after from: Int) throws -> Range<Int>? {
        var index = from
        while index < buffer.count {
            if buffer[index] == 13 {
                guard index + 1 < buffer.count else { return nil }
                guard buffer[index + 1] == 10 else {
                    throw RESPError("CR not followed by LF", at: consumedBefore + index)
                }
                return from..<index
            }
            guard buffer[index] != 10 else { throw RESPError("LF without CR", at: consumedBefore + index) }
            index += 1
            if index - from > maxLineLength {
                throw RESPError("line longer than \(maxLineLength) bytes", at: consumedBefore + from)
            }
        }
        return nil
    }

    private func bad(_ what: String, _ line: Range<Int>) -> RESPError {
        let text = String(decoding: buffer[line].prefix(40), as: UTF8.self)
        return RESPError("bad \(what) \"\(text)\"", at: consumedBefore + line.lowerBound)
    }
}
