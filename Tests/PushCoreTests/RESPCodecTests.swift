// RESP without Redis: the request encoder and the reply decoder at every chunking, malformed input, limits.
import Testing

@testable import PushCore

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Decodes every reply from `chunks` fed in order, or the first error.
private func decodeRESP(_ chunks: [[UInt8]], decoder: RESPDecoder = RESPDecoder()) -> ([RedisValue], RESPError?) {
    var decoder = decoder
    var values: [RedisValue] = []
    do {
        for chunk in chunks {
            decoder.feed(chunk)
            while let value = try decoder.next() { values.append(value) }
        }
    } catch let error as RESPError {
        return (values, error)
    } catch {
        Issue.record("unexpected error \(error)")
    }
    return (values, nil)
}

@Suite struct RESPCodecTests {
    /// Commands go out as multi-bulk requests, binary arguments as they are.
    @Test func respEncode() {
        #expect(RESP.encodeCommand(["SET", "k", "v"]) == bytes("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"))
        #expect(
            RESP.encodeCommand([bytes("X"), [], [0, 13, 10]]) == bytes("*3\r\n$1\r\nX\r\n$0\r\n\r\n$3\r\n") + [
                0, 13, 10,
            ] + bytes("\r\n"))
        #expect(RESP.encodeCommand([[UInt8]]()) == bytes("*0\r\n"))
    }

    static let respStream = bytes(
        "+OK\r\n-NOSCRIPT No matching script\r\n:42\r\n:-7\r\n$5\r\nhe\r\nl\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
            + "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+x\r\n")
    static let respValues: [RedisValue] = [
        .status("OK"), .error("NOSCRIPT No matching script"), .integer(42), .integer(-7), .string(bytes("he\r\nl")),
        .string([]), .null, .null, .array([]),
        .array([.integer(1), .array([.string(bytes("a")), .null]), .status("x")]),
    ]

    /// Every reply type, decoded from one read.
    @Test func respDecodeAllTypes() {
        let (values, error) = decodeRESP([Self.respStream])
        #expect(error == nil)
        #expect(values == Self.respValues)
    }

    /// The stream cut at every byte into two reads decodes the same.
    @Test func respSplitAtEveryByte() {
        let stream = Self.respStream
        for cut in 0...stream.count {
            let (values, error) = decodeRESP([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(error == nil, "cut at \(cut)")
            #expect(values == Self.respValues, "cut at \(cut)")
        }
    }

    /// One byte per read with empty reads between, and random chunk sizes.
    @Test func respChunkings() {
        let stream = Self.respStream
        #expect(decodeRESP(stream.flatMap { [[$0], []] }).0 == Self.respValues)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var chunks: [[UInt8]] = []
            var rest = stream[...]
            while !rest.isEmpty {
                let size = Int.random(in: 0...9, using: &generator)
                chunks.append(Array(rest.prefix(size)))
                rest = rest.dropFirst(size)
            }
            #expect(decodeRESP(chunks).0 == Self.respValues)
        }
    }

    /// An incomplete reply waits; the rest completes it; a large bulk string crosses many reads.
    @Test func respIncomplete() throws {
        var decoder = RESPDecoder()
        decoder.feed(bytes("*2\r\n$5\r\nab"))
        #expect(try decoder.next() == nil)
        decoder.feed(bytes("cde\r\n:1"))
        #expect(try decoder.next() == nil)
        decoder.feed(bytes("\r\n"))
        #expect(try decoder.next() == .array([.string(bytes("abcde")), .integer(1)]))
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedCount == 0)

        let big = [UInt8](repeating: 7, count: 100_000)
        let stream = bytes("$100000\r\n") + big + bytes("\r\n")
        var values: [RedisValue] = []
        for start in stride(from: 0, to: stream.count, by: 4096) {
            decoder.feed(stream[start..<min(start + 4096, stream.count)])
            while let value = try decoder.next() { values.append(value) }
        }
        #expect(values == [.string(big)])
    }

    /// Malformed input, named by scenario, throws instead of trapping or waiting forever.
    @Test(arguments: [
        ("unknown type", "?x\r\n"), ("letters in integer", ":12a\r\n"), ("empty integer", ":\r\n"),
        ("integer overflow", ":99999999999999999999\r\n"), ("bulk length -2", "$-2\r\n"),
        ("bulk length text", "$abc\r\n"),
        ("bulk without CRLF", "$3\r\nabcXY"), ("CR without LF", "+OK\rX"), ("LF without CR", "+OK\n"),
        ("array length -5", "*-5\r\n"), ("bad element", "*2\r\n:1\r\n!\r\n"),
    ])
    func respMalformed(name: String, text: String) {
        let (_, error) = decodeRESP([bytes(text)])
        #expect(error != nil, "\(name)")
    }

    /// Limits: nesting depth, line length, bulk length.
    @Test func respLimits() {
        var decoder = RESPDecoder()
        decoder.maxDepth = 3
        #expect(decodeRESP([bytes("*1\r\n*1\r\n*1\r\n:1\r\n")], decoder: decoder).1 == nil)
        #expect(decodeRESP([bytes("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n")], decoder: decoder).1 != nil)
        decoder = RESPDecoder()
        decoder.maxLineLength = 8
        #expect(decodeRESP([bytes("+12345678\r\n")], decoder: decoder).1 == nil)
        #expect(decodeRESP([bytes("+123456789")], decoder: decoder).1 != nil)  // fails before the CRLF arrives
        decoder = RESPDecoder()
        decoder.maxBulkLength = 10
        #expect(decodeRESP([bytes("$11\r\n")], decoder: decoder).1 != nil)
    }

    /// The value helpers.
    @Test func redisValueHelpers() {
        #expect(RedisValue.integer(5).int == 5)
        #expect(RedisValue.string(bytes("-12")).int == -12)
        #expect(RedisValue.string(bytes("1x")).int == nil)
        #expect(RedisValue.null.int == nil)
        #expect(RedisValue.status("OK").bytes == bytes("OK"))
        #expect(RedisValue.string(bytes("hé")).text == "hé")
        #expect(RedisValue.error("ERR x").text == "ERR x")
        #expect(RedisValue.error("ERR x").isError)
        #expect(RedisValue.array([.null]).array == [.null])
    }
}
