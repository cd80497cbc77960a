import Testing

@testable import PushCore

@Suite struct JSONTests {
    @Test func parsesValues() throws {
        let value = try JSONParser.parse(#" {"a":[1,-2.5e3,true,false,null],"b":"x\"\u00e9\ud83d\ude00","c":{}} "#)
        #expect(value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(value["b"] == .string("x\"é😀"))
        #expect(value["c"] == .object([]))
    }

    @Test(arguments: [
        "", "{", "[1,]", #"{"a":}"#, "01", "1.", "-", "tru", #""\x""#, "\"a\u{01}\"", #"{"a":1}x"#, "[1 2]",
        #""\ud800""#, "nul", #"{1:2}"#,
    ])
    func rejectsMalformed(text: String) {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(text) }
    }

    /// Deep nesting is refused instead of exhausting the stack.
    @Test func depthLimit() {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse(String(repeating: "[", count: 100_000)) }
        #expect(throws: Never.self) { try JSONParser.parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10)) }
    }

    /// Member ranges point at each value's bytes exactly as written.
    @Test func memberRanges() throws {
        let body = Array(#"{"op":1000, "payload": {"x": [1, 2]} }"#.utf8)
        let members = try JSONParser.parseObjectWithRanges(body)
        let range = try #require(members["payload"]?.range)
        #expect(String(decoding: body[range], as: UTF8.self) == #"{"x": [1, 2]}"#)
    }

    /// Written JSON parses back, escapes included.
    @Test func writerRoundTrip() throws {
        var writer = JSONWriter()
        writer.object {
            $0.field("s", "quote\" backslash\\ newline\n tab\t bell\u{07}")
            $0.field("n", -12)
            $0.key("a")
            $0.array { $0.value(true); $0.null() }
        }
        let parsed = try JSONParser.parse(writer.bytes)
        #expect(parsed["s"] == .string("quote\" backslash\\ newline\n tab\t bell\u{07}"))
        #expect(parsed["n"]?.int64Value == -12)
        #expect(parsed["a"] == .array([.bool(true), .null]))
    }

    /// A parsed value written back: compact, numbers as written, members in order (repeats kept), escapes again.
    @Test func parsedValueWrittenBack() throws {
        let text = #"{ "b": [1.50, -0, 2e10, true, null], "a": {"s": "q\"\u00e9\n/"}, "b": {} }"#
        let value = try JSONParser.parse(text)
        let written = String(decoding: value.jsonBytes, as: UTF8.self)
        #expect(written == #"{"b":[1.50,-0,2e10,true,null],"a":{"s":"q\"é\n/"},"b":{}}"#)
        #expect(try JSONParser.parse(written) == value)
    }
}

@Suite struct JSONRangeTests {
    /// Each element of a nested array is found by its exact bytes.
    @Test func arrayElements() throws {
        let body = Array(#"{"pushes": [ {"a":1} , "x",[2, 3] ]}"#.utf8)
        let members = try JSONParser.parseObjectWithRanges(body)
        let ranges = try JSONParser.arrayElementRanges(body, in: try #require(members["pushes"]?.range))
        #expect(ranges.map { String(decoding: body[$0], as: UTF8.self) } == [#"{"a":1}"#, #""x""#, "[2, 3]"])
        #expect(try JSONParser.arrayElementRanges(Array("[]".utf8), in: 0..<2).isEmpty)
        #expect(throws: JSONParser.Error.self) { try JSONParser.arrayElementRanges(Array("{}".utf8), in: 0..<2) }
    }
}

@Suite struct DecimalDigitsTests {
    /// Digits as `String(value)` writes them, at the edges of both types.
    @Test(arguments: [0, 7, 10, 99, 100, 1_000_000_007, Int.max, Int.min, -1, -10])
    func signed(_ value: Int) {
        var bytes: [UInt8] = []
        bytes.appendDecimal(value)
        #expect(bytes == Array(String(value).utf8))
    }

    @Test(arguments: [UInt64(0), 9, 10, 18_446_744_073_709_551_615, 1_000_000_000_000])
    func unsigned(_ value: UInt64) {
        var bytes: [UInt8] = [UInt8(ascii: "x")]
        bytes.appendDecimal(value)
        #expect(bytes == Array(("x" + String(value)).utf8))
    }
}
