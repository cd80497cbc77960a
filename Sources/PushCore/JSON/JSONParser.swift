/// A strict RFC 8259 parser over bytes. Besides values it can report where each top-level member's value
/// lies in the input, so that a push payload is forwarded byte for byte as the backend wrote it.
public struct JSONParser {
    /// Why the input is not JSON, with the byte offset where it went wrong.
    public struct Error: Swift.Error, Equatable, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    /// A top-level member: its parsed value and the byte range the value occupies in the input. A struct rather
    /// than a tuple: a dictionary of tuples looks its type metadata up at run time, on every push.
    public struct Member: Sendable {
        public var value: JSONValue
        public var range: Range<Int>

        public init(value: JSONValue, range: Range<Int>) {
            self.value = value
            self.range = range
        }
    }

    /// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
    public static let maxDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var depth = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Parses a whole document.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        var parser = JSONParser(bytes)
        parser.skipSpace()
        let value = try parser.value()
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.error("trailing characters") }
        return value
    }

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBytes { raw in try parse(raw) }
    }

    public static func parse(_ text: String) throws -> JSONValue { try parse(Array(text.utf8)) }

    /// Parses a document that must be an object and returns, for each member, its parsed value and the byte
    /// range its value occupies in `bytes` (the last one when a name repeats).
    public static func parseObjectWithRanges(
        _ bytes: [UInt8]
    ) throws -> [String: JSONParser.Member] {
        var result: [String: JSONParser.Member] = [:]
        result.reserveCapacity(8)  // a push has up to 7 members: no rehashing on the way
        try bytes.withUnsafeBytes { raw in
            var parser = JSONParser(raw)
            parser.skipSpace()
            guard parser.peek() == UInt8(ascii: "{") else { throw parser.error("expected an object") }
            try parser.members { name, parser in
                let start = parser.index
                let value = try parser.value()
                result[name] = Member(value: value, range: start..<parser.index)
            }
            parser.skipSpace()
            guard parser.index == raw.count else { throw parser.error("trailing characters") }
        }
        return result
    }

    /// The byte ranges of the elements of the array that fills `range` of `bytes` (as a member range from
    /// `parseObjectWithRanges` gives), so each element can be handled as a document of its own.
    public static func arrayElementRanges(_ bytes: [UInt8], in range: Range<Int>) throws -> [Range<Int>] {
        try bytes.withUnsafeBytes { whole in
            let raw = UnsafeRawBufferPointer(rebasing: whole[range])
            var parser = JSONParser(raw)
            parser.skipSpace()
            guard parser.peek() == UInt8(ascii: "[") else { throw parser.error("expected an array") }
            try parser.enter()
            parser.index += 1
            var ranges: [Range<Int>] = []
            parser.skipSpace()
            if parser.peek() == UInt8(ascii: "]") { return ranges }
            while true {
                parser.skipSpace()
                let start = parser.index
                _ = try parser.value()
                ranges.append((range.lowerBound + start)..<(range.lowerBound + parser.index))
                parser.skipSpace()
                switch parser.peek() {
                case UInt8(ascii: ","): parser.index += 1
                case UInt8(ascii: "]"): return ranges
                default: throw parser.error("expected ',' or ']'")
                }
            }
        }
    }

    // MARK: - Grammar

    private mutating func value() throws -> JSONValue {
        guard let byte = peek() else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            var members: [(String, JSONValue)] = []
            try self.members { name, parser in members.append((name, try parser.value())) }
            return .object(members)
        case UInt8(ascii: "["):
            return .array(try elements())
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try number())
        default:
            throw error("unexpected character")
        }
    }

    /// Parses `{ "name": value, … }`, handing each member's name to `member`, which must consume the value.
    private mutating func members(
        _ member: (String, inout JSONParser) throws -> Void
    ) throws {
        try enter()
        index += 1  // {
        skipSpace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return
        }
        while true {
            skipSpace()
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let name = try string()
            skipSpace()
            guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipSpace()
            try member(name, &self)
            skipSpace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return
            default: throw error("expected ',' or '}'")
            }
        }
    }

    private mutating func elements() throws -> [JSONValue] {
        try enter()
        index += 1  // [
        var result: [JSONValue] = []
        skipSpace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return result
        }
        while true {
            skipSpace()
            result.append(try value())
            skipSpace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return result
            default: throw error("expected ',' or ']'")
            }
        }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw error("nested deeper than \(Self.maxDepth)") }
    }

    private mutating func literal(_ word: String) throws {
        for expected in word.utf8 {
            guard peek() == expected else { throw error("invalid literal") }
            index += 1
        }
    }

    private mutating func number() throws -> String {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), isDigit(first) else { throw error("expected a digit") }
        index += 1
        if first != UInt8(ascii: "0") { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let d = peek(), isDigit(d) else { throw error("expected a digit after '.'") }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let d = peek(), isDigit(d) else { throw error("expected a digit in the exponent") }
            skipDigits()
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    private mutating func string() throws -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        while let byte = peek(), byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            if byte < 0x20 { throw error("control character in string") }
            index += 1
        }
        guard let stop = peek() else { throw error("unterminated string") }
        if stop == UInt8(ascii: "\"") {
            let text = try validUTF8(start..<index)
            index += 1
            return text
        }
        var scalars = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while true {
            guard let byte = peek() else { throw error("unterminated string") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try validUTF8(scalars)
            case UInt8(ascii: "\\"):
                guard let escaped = peek() else { throw error("unterminated escape") }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escaped)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"): scalars.append(contentsOf: try unicodeEscape())
                default: throw error("invalid escape")
                }
            case 0..<0x20:
                throw error("control character in string")
            default:
                scalars.append(byte)
            }
        }
    }

    /// Reads the 4 hex digits after `\u` (and a following low surrogate) and returns the UTF-8 bytes.
    private mutating func unicodeEscape() throws -> [UInt8] {
        var code = try hex4()
        if (0xD800...0xDBFF).contains(code) {
            guard peek() == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                throw error("unpaired surrogate")
            }
            index += 2
            let low = try hex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate") }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(code) {
            throw error("unpaired surrogate")
        }
        guard let scalar = Unicode.Scalar(code) else { throw error("invalid code point") }
        return Array(String(Character(scalar)).utf8)
    }

    private mutating func hex4() throws -> UInt32 {
        guard bytes.count - index >= 4 else { throw error("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid hex digit")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private func validUTF8(_ range: Range<Int>) throws -> String {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[range])
        // Names and ids are nearly always ASCII, which is valid UTF-8 as it is: `String(validating:)` is generic
        // and looks up type metadata on every call.
        if slice.allSatisfy({ $0 < 0x80 }) { return String(decoding: slice, as: UTF8.self) }
        guard let text = String(validating: slice, as: UTF8.self) else { throw error("invalid UTF-8") }
        return text
    }

    private func validUTF8(_ utf8: [UInt8]) throws -> String {
        guard let text = String(validating: utf8, as: UTF8.self) else { throw error("invalid UTF-8") }
        return text
    }

    // MARK: - Bytes

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func skipDigits() {
        while let byte = peek(), isDigit(byte) { index += 1 }
    }

    private mutating func skipSpace() {
        while let byte = peek(),
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
                || byte == UInt8(ascii: "\t")
        {
            index += 1
        }
    }

    private func error(_ reason: String) -> Error { Error(offset: index, reason: reason) }
}
