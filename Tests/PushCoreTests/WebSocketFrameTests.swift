// WebSocket frames (RFC 6455 §5): the decoder at every chunking, control frames, limits, and the encoder.
import Testing

@testable import PushCore

/// What the decoder reported, with payloads copied out.
private enum Seen: Equatable {
    case binary([UInt8])
    case ping([UInt8])
    case pong
    case close(UInt16?, String)
}

/// Feeds `chunks` in order; returns the events (consecutive binary pieces merged) and the first error.
private func decode(_ chunks: [[UInt8]], maxMessage: Int = 1 << 20) -> ([Seen], WebSocketError?) {
    var decoder = WebSocketDecoder(maxMessage: maxMessage)
    var seen: [Seen] = []
    do {
        for var chunk in chunks {
            try chunk.withUnsafeMutableBytes { bytes in
                try decoder.feed(bytes) { event in
                    switch event {
                    case .binary(let payload):
                        if case .binary(let before) = seen.last {
                            seen[seen.count - 1] = .binary(before + payload)
                        } else {
                            seen.append(.binary(Array(payload)))
                        }
                    case .ping(let payload): seen.append(.ping(payload))
                    case .pong: seen.append(.pong)
                    case .close(let code, let reason): seen.append(.close(code?.rawValue, reason))
                    }
                    return true
                }
            }
        }
    } catch let error as WebSocketError {
        return (seen, error)
    } catch {
        Issue.record("unexpected error \(error)")
    }
    return (seen, nil)
}

// MARK: - Frames

@Suite struct WebSocketDecoderTests {
    /// A masked binary message holding two pushgw frames comes out unmasked, cut at every byte boundary.
    @Test func binaryAtEveryCut() {
        let message = clientFrame(.binary, pushgwFrames)
        for cut in 0...message.count {
            let (seen, error) = decode(split(message, at: cut))
            #expect(error == nil)
            #expect(seen == [.binary(pushgwFrames)], "cut at \(cut)")
        }
        let (seen, error) = decode(message.map { [$0] })
        #expect(error == nil && seen == [.binary(pushgwFrames)], "one byte at a time")
    }

    /// Three messages in one read, and empty reads between pieces.
    @Test func coalescedAndEmptyChunks() {
        let bytes = clientFrame(.binary, [1, 2]) + clientFrame(.binary, []) + clientFrame(.binary, [3])
        let (seen, error) = decode([[], Array(bytes.prefix(5)), [], Array(bytes.dropFirst(5)), []])
        #expect(error == nil)
        #expect(seen == [.binary([1, 2, 3])])
    }

    /// A message in three fragments with a ping between them: the bytes in order, the ping answered in place.
    @Test func fragmentedWithPingBetween() {
        let bytes =
            clientFrame(.binary, Array(pushgwFrames[..<10]), fin: false)
            + clientFrame(.continuation, Array(pushgwFrames[10..<30]), fin: false)
            + clientFrame(.ping, Array("are you there".utf8))
            + clientFrame(.continuation, Array(pushgwFrames[30...]), fin: true)
            + clientFrame(.pong, [9])
        for cut in 0...bytes.count {
            let (seen, error) = decode(split(bytes, at: cut))
            #expect(error == nil)
            #expect(
                seen == [
                    .binary(Array(pushgwFrames[..<30])), .ping(Array("are you there".utf8)),
                    .binary(Array(pushgwFrames[30...])), .pong,
                ],
                "cut at \(cut)")
        }
    }

    /// 16-bit (126…65535) and 64-bit (65536…) payload lengths.
    @Test(arguments: [126, 300, 65_535, 65_536, 70_000])
    func extendedLengths(count: Int) {
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let frame = clientFrame(.binary, payload)
        #expect(frame.count == count + (count <= 65_535 ? 8 : 14))
        let (seen, error) = decode([Array(frame.prefix(3)), Array(frame.dropFirst(3))], maxMessage: 100_000)
        #expect(error == nil)
        #expect(seen == [.binary(payload)])
    }

    /// Unmasking gives the same bytes whatever the slice's place in the key and its length.
    @Test func unmaskMatchesByteByByte() {
        let key: UInt32 = 0xA1B2_C3D4
        let keyBytes: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4]
        for offset in 0..<4 {
            for length in 0..<20 {
                var bytes = (0..<length).map { UInt8($0 * 7) }
                let expected = bytes.enumerated().map { $0.element ^ keyBytes[($0.offset + offset) & 3] }
                bytes.withUnsafeMutableBytes { WebSocketDecoder.unmask($0, key: key, offset: offset) }
                #expect(bytes == expected, "offset \(offset) length \(length)")
            }
        }
    }

    /// A close frame gives its code and reason; nothing after it is read.
    @Test func close() {
        var payload: [UInt8] = [0x03, 0xE8]
        payload += Array("bye".utf8)
        let (seen, error) = decode([clientFrame(.close, payload) + clientFrame(.binary, [1])])
        #expect(error == nil)
        #expect(seen == [.close(1000, "bye")])
        #expect(decode([clientFrame(.close, [])]).0 == [.close(nil, "")])
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        let code: UInt16
        var testDescription: String { name }
    }

    static let bad: [Bad] = {
        var unmasked: [UInt8] = []
        WebSocketFrame.encode(.binary, payload: [1, 2, 3], into: &unmasked)
        var tooLong = clientFrame(.binary, [])
        tooLong[1] = 0x80 | 127
        tooLong.insert(contentsOf: [0x80, 0, 0, 0, 0, 0, 0, 1], at: 2)
        return [
            Bad(name: "unmasked frame", bytes: unmasked, code: 1002),
            Bad(name: "text message", bytes: clientFrame(.text, Array("hi".utf8)), code: 1003),
            Bad(name: "RSV1 set", bytes: clientFrame(.binary, [1], rsv: 4), code: 1002),
            Bad(name: "RSV3 set", bytes: clientFrame(.binary, [1], rsv: 1), code: 1002),
            Bad(name: "reserved opcode 3", bytes: [0x83, 0x80, 0, 0, 0, 0], code: 1002),
            Bad(name: "reserved opcode 0xB", bytes: [0x8B, 0x80, 0, 0, 0, 0], code: 1002),
            Bad(name: "ping over 125 bytes", bytes: clientFrame(.ping, Array(repeating: 1, count: 126)), code: 1002),
            Bad(name: "fragmented ping", bytes: clientFrame(.ping, [1], fin: false), code: 1002),
            Bad(name: "continuation first", bytes: clientFrame(.continuation, [1]), code: 1002),
            Bad(
                name: "binary inside a fragmented message",
                bytes: clientFrame(.binary, [1], fin: false) + clientFrame(.binary, [2]), code: 1002),
            Bad(name: "64-bit length with the top bit", bytes: tooLong, code: 1002),
            Bad(
                name: "message over the limit",
                bytes: Array(clientFrame(.binary, Array(repeating: 0, count: 1025)).prefix(8)), code: 1009),
            Bad(
                name: "fragments over the limit",
                bytes: clientFrame(.binary, Array(repeating: 0, count: 600), fin: false)
                    + clientFrame(.continuation, Array(repeating: 0, count: 600)), code: 1009),
            Bad(name: "close with 1 byte", bytes: clientFrame(.close, [3]), code: 1002),
            Bad(name: "close status 1005", bytes: clientFrame(.close, [0x03, 0xED]), code: 1002),
            Bad(name: "close status 999", bytes: clientFrame(.close, [0x03, 0xE7]), code: 1002),
            Bad(name: "close reason not UTF-8", bytes: clientFrame(.close, [0x03, 0xE8, 0xFF, 0xFE]), code: 1007),
        ]
    }()

    /// Each violation throws its close status, whether it arrives whole or one byte at a time.
    @Test(arguments: bad)
    func refused(_ bad: Bad) {
        for chunks in [[bad.bytes], bad.bytes.map { [$0] }] {
            let (_, error) = decode(chunks, maxMessage: 1024)
            #expect(error?.code.rawValue == bad.code, "\(String(describing: error))")
        }
    }

    /// Returning false from the callback stops decoding.
    @Test func stops() throws {
        var decoder = WebSocketDecoder(maxMessage: 1024)
        var bytes = clientFrame(.binary, [1]) + clientFrame(.binary, [2])
        var count = 0
        try bytes.withUnsafeMutableBytes { bytes in
            try decoder.feed(bytes) { _ in
                count += 1
                return false
            }
        }
        #expect(count == 1)
    }
}

@Suite struct WebSocketFrameTests {
    /// Server headers: 2 bytes up to 125, 4 up to 65,535, 10 beyond; FIN set, no mask.
    @Test(arguments: [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10), (1 << 20, 10)])
    func headerSizes(length: Int, size: Int) {
        var header: [UInt8] = []
        WebSocketFrame.encodeHeader(.binary, payloadLength: length, into: &header)
        #expect(header.count == size)
        #expect(WebSocketFrame.headerLength(payloadLength: length) == size)
        #expect(header[0] == 0x82)
        #expect(header[1] & 0x80 == 0)
        switch size {
        case 2: #expect(Int(header[1]) == length)
        case 4: #expect(header[1] == 126 && Int(header[2]) << 8 | Int(header[3]) == length)
        default: #expect(header[1] == 127 && header[2...].reduce(0) { $0 << 8 | Int($1) } == length)
        }
    }

    /// A close frame carries the code big-endian and a reason cut to 123 bytes on a character boundary.
    @Test func closeFrame() {
        var out: [UInt8] = []
        WebSocketFrame.encodeClose(.policyViolation, reason: "auth_required", into: &out)
        #expect(out == [0x88, 15, 0x03, 0xF0] + Array("auth_required".utf8))
        out = []
        WebSocketFrame.encodeClose(.normal, reason: String(repeating: "é", count: 100), into: &out)
        #expect(out[1] == 2 + 122)
        #expect(String(validating: out[4...], as: UTF8.self) != nil)
    }

    /// Protocol errors map to close statuses.
    @Test func protocolErrorStatus() {
        #expect(ProtocolError.badLength(3).webSocketCloseCode == .protocolError)
        #expect(ProtocolError.frameTooLarge(99_999, limit: 65_536).webSocketCloseCode == .messageTooBig)
        #expect(ProtocolError.authRequired(got: .heartbeat).webSocketCloseCode == .policyViolation)
    }
}
