/// An integer as the decimal ARGV string the scripts expect.
func decimal(_ value: UInt64) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendDecimal(value)
    return bytes
}

func decimal(_ value: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendDecimal(value)
    return bytes
}

/// Reads the elements of an array reply, turning anything unexpected into a ``ScriptError``.
struct ReplyReader {
    let script: String
    let reply: RedisValue
    let elements: [RedisValue]

    /// Throws the server's error for an error reply, and for anything but an array.
    init(_ script: String, _ reply: RedisValue) throws {
        self.script = script
        self.reply = reply
        switch reply {
        case .array(let elements): self.elements = elements
        case .error(let message): throw ScriptError.server(script: script, message: message)
        default: throw ScriptError.unexpectedReply(script: script, "expected an array", reply: reply)
        }
    }

    /// A reply that is one non-negative integer.
    static func scalar(_ script: String, _ reply: RedisValue, _ name: String) throws -> UInt64 {
        switch reply {
        case .integer(let value) where value >= 0: return UInt64(value)
        case .error(let message): throw ScriptError.server(script: script, message: message)
        default:
            throw ScriptError.unexpectedReply(script: script, "expected \(name), a non-negative integer", reply: reply)
        }
    }

    var count: Int { elements.count }

    func unexpected(_ detail: String) -> ScriptError {
        ScriptError.unexpectedReply(script: script, detail, reply: reply)
    }

    func int(_ index: Int, _ name: String) throws -> Int64 {
        guard index < elements.count else { throw unexpected("\(name) (element \(index)) is missing") }
        guard case .integer(let value) = elements[index] else {
            throw unexpected("\(name) (element \(index)) is not an integer")
        }
        return value
    }

    /// A counter or seq: a non-negative integer.
    func count(_ index: Int, _ name: String) throws -> UInt64 {
        let value = try int(index, name)
        guard value >= 0 else { throw unexpected("\(name) (element \(index)) is negative") }
        return UInt64(value)
    }

    func bytes(_ index: Int, _ name: String) throws -> [UInt8] {
        guard index < elements.count, case .string(let bytes) = elements[index] else {
            throw unexpected("\(name) (element \(index)) is not a bulk string")
        }
        return bytes
    }

    /// The stored messages from element `index` on.
    func messages(from index: Int) throws -> [StoredMessage] {
        guard index <= elements.count else { throw unexpected("fewer than \(index) elements") }
        return try (index..<elements.count).map { index in
            guard let message = StoredMessage(encoded: try bytes(index, "message")) else {
                throw unexpected("element \(index) is not a stored message")
            }
            return message
        }
    }
}
