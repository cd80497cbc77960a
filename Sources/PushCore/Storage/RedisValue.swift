/// One Redis reply (RESP2), as the scripts and commands return it.
public indirect enum RedisValue: Equatable, Sendable {
    /// A bulk string: binary-safe bytes.
    case string([UInt8])
    /// An integer reply (a Lua number comes back as one, truncated).
    case integer(Int64)
    /// A multi-bulk reply.
    case array([RedisValue])
    /// The null bulk string or null array (a Lua `false` or `nil` comes back as one).
    case null
    /// An error reply, e.g. `NOSCRIPT No matching script…`.
    case error(String)
    /// A status reply, e.g. `OK`.
    case status(String)

    /// The integer, or a bulk or status string holding a decimal integer (hash fields come back as strings).
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .string(let bytes): Int64(decimal: bytes)
        case .status(let text): Int64(decimal: Array(text.utf8))
        default: nil
        }
    }

    /// The bytes of a bulk or status string.
    public var bytes: [UInt8]? {
        switch self {
        case .string(let bytes): bytes
        case .status(let text): Array(text.utf8)
        default: nil
        }
    }

    /// A bulk, status or error string as text (invalid UTF-8 replaced).
    public var text: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text), .error(let text): text
        default: nil
        }
    }

    /// The elements of a multi-bulk reply.
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Whether this is an error reply.
    public var isError: Bool {
        if case .error = self { return true }
        return false
    }
}

extension RedisValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .string(let bytes): "\"\(String(decoding: bytes, as: UTF8.self))\""
        case .integer(let value): "(integer) \(value)"
        case .array(let elements): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .null: "(nil)"
        case .error(let text): "(error) \(text)"
        case .status(let text): text
        }
    }
}

extension Int64 {
    /// Parses `-?[0-9]+` exactly (no spaces, no `+`), nil on anything else or on overflow. RESP lengths and
    /// integers and the fields of a stored message are all written this way.
    init?(decimal bytes: some Collection<UInt8>) {
        var rest = bytes[...]
        let negative = rest.first == UInt8(ascii: "-")
        if negative { rest = rest.dropFirst() }
        guard !rest.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in rest {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) =
                negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            guard !o1, !o2 else { return nil }
            value = next
        }
        self = value
    }
}
