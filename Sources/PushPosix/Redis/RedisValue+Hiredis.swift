import CHiredis
import Glibc
import PushCore

extension RedisValue {
    /// Copies a hiredis reply (RESP2) into a value; hiredis frees the reply when the callback returns.
    init(reply: UnsafePointer<redisReply>) {
        let reply = reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            self = .string(reply.bytes)
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: reply.bytes, as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: reply.bytes, as: UTF8.self))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                guard let element = reply.element?[index] else { continue }
                elements.append(RedisValue(reply: element))
            }
            self = .array(elements)
        default:
            self = .error("unknown hiredis reply type \(reply.type)")
        }
    }
}

extension redisReply {
    /// The string's bytes (bulk, status or error).
    var bytes: [UInt8] {
        guard let str, len > 0 else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: str, count: len))
    }

    /// Whether this is a bulk or status string equal to the ASCII `text`, without copying it.
    func equals(_ text: StaticString) -> Bool {
        guard type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS, len == text.utf8CodeUnitCount, let str
        else { return false }
        return memcmp(str, text.utf8Start, len) == 0
    }
}
