import Testing

@testable import PushCore

// MARK: - Helpers

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

/// A client frame, masked with a fixed key.
private func clientFrame(
    _ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, mask: UInt32 = 0x37FA_213D
) -> [UInt8] {
    var out: [UInt8] = []
    WebSocketFrame.encodeMasked(opcode, payload: payload, mask: mask, fin: fin, rsv: rsv, into: &out)
    return out
}

/// `bytes` cut at `cut`: two chunks.
private func split(_ bytes: [UInt8], at cut: Int) -> [[UInt8]] {
    [Array(bytes[..<cut]), Array(bytes[cut...])]
}

/// Some pushgw frames, as a binary message carries them.
private let pushgwFrames: [UInt8] =
    Frame(.auth, sequence: 1, text: #"{"mid":7,"key":"web"}"#).encoded + Frame(.heartbeat, sequence: 2).encoded

// MARK: - Handshake

/// A request head as a browser sends it, with `replacing` headers changed (nil value: left out).
private func upgradeRequest(
    requestLine: String = "GET /sub HTTP/1.1", replacing: [String: String?] = [:], extra: String = ""
) -> [UInt8] {
    var headers: [(String, String?)] = [
        ("Host", "127.0.0.1:3102"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Origin", "http://example.com"),
        ("Sec-WebSocket-Version", "13"),
    ]
    for (name, value) in replacing {
        if let index = headers.firstIndex(where: { $0.0 == name }) {
            headers[index].1 = value
        } else {
            headers.append((name, value))
        }
    }
    var text = requestLine + "\r\n"
    for case (let name, let value?) in headers { text += "\(name): \(value)\r\n" }
    return Array((text + extra + "\r\n").utf8)
}

/// Feeds `chunks` to a fresh handshake; returns the last outcome.
private func handshake(_ chunks: [[UInt8]]) -> WebSocketHandshake.Outcome {
    var handshake = WebSocketHandshake()
    var outcome = WebSocketHandshake.Outcome.needMore
    for chunk in chunks {
        outcome = chunk.withUnsafeBytes { handshake.feed($0) }
        if outcome != .needMore { break }
    }
    return outcome
}

/// One upgrade request that must be refused.
struct BadUpgrade: Sendable, CustomTestStringConvertible {
    let name: String
    let request: [UInt8]
    let status: Int
    let code: String

    var testDescription: String { name }
}

@Suite struct WebSocketHandshakeTests {
    /// RFC 6455 §1.3: the sample key's accept value.
    @Test func rfcSampleAccept() {
        #expect(WebSocketHandshake.accept(key: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    /// A browser's request gets 101 with the accept value; bytes after the head are handed back.
    @Test func upgrade() {
        let frame = clientFrame(.binary, [1, 2, 3])
        let outcome = handshake([upgradeRequest() + frame])
        let expected =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        #expect(outcome == .upgrade(response: Array(expected.utf8), rest: frame))
    }

    /// The head cut at every byte boundary, or fed one byte at a time, gives the same answer.
    @Test func upgradeAtEveryCut() {
        let request = upgradeRequest()
        let whole = handshake([request])
        guard case .upgrade = whole else { return #expect(Bool(false), "\(whole)") }
        for cut in 1..<request.count {
            #expect(handshake(split(request, at: cut)) == whole, "cut at \(cut)")
        }
        #expect(handshake(request.map { [$0] }) == whole)
    }

    /// The Upgrade and Connection tokens are case-insensitive; Connection may list other tokens.
    @Test(arguments: [
        ["Upgrade": "WebSocket", "Connection": "keep-alive, Upgrade"],
        ["Upgrade": "websocket", "Connection": "UPGRADE"],
        ["Connection": "Upgrade ,keep-alive"],
    ])
    func tokensCaseInsensitive(headers: [String: String]) {
        guard case .upgrade = handshake([upgradeRequest(replacing: headers)]) else {
            return #expect(Bool(false), "\(headers) refused")
        }
    }

    /// Header names are case-insensitive, and spaces or tabs around values are optional.
    @Test func headerNamesCaseInsensitive() {
        let request =
            "GET / HTTP/1.1\r\nhost:h\r\nUPGRADE:\twebsocket \r\nconnection: upgrade\r\n"
            + "SEC-WEBSOCKET-KEY:   dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version:13\r\n\r\n"
        guard case .upgrade = handshake([Array(request.utf8)]) else { return #expect(Bool(false), "refused") }
    }

    static let bad: [BadUpgrade] = [
        BadUpgrade(
            name: "no key", request: upgradeRequest(replacing: ["Sec-WebSocket-Key": nil]), status: 400,
            code: "bad_request"),
        BadUpgrade(
            name: "key of 15 bytes", request: upgradeRequest(replacing: ["Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAA"]),
            status: 400, code: "bad_request"),
        BadUpgrade(
            name: "key not base64",
            request: upgradeRequest(replacing: ["Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!=="]),
            status: 400, code: "bad_request"),
        BadUpgrade(
            name: "version 8", request: upgradeRequest(replacing: ["Sec-WebSocket-Version": "8"]), status: 426,
            code: "upgrade_required"),
        BadUpgrade(
            name: "no version", request: upgradeRequest(replacing: ["Sec-WebSocket-Version": nil]), status: 426,
            code: "upgrade_required"),
        BadUpgrade(
            name: "POST", request: upgradeRequest(requestLine: "POST /sub HTTP/1.1"), status: 405,
            code: "method_not_allowed"),
        BadUpgrade(
            name: "no Upgrade", request: upgradeRequest(replacing: ["Upgrade": nil]), status: 400, code: "bad_request"),
        BadUpgrade(
            name: "Upgrade: h2c", request: upgradeRequest(replacing: ["Upgrade": "h2c"]), status: 400,
            code: "bad_request"),
        BadUpgrade(
            name: "Connection: keep-alive", request: upgradeRequest(replacing: ["Connection": "keep-alive"]),
            status: 400, code: "bad_request"),
        BadUpgrade(
            name: "no Host", request: upgradeRequest(replacing: ["Host": nil]), status: 400, code: "bad_request"),
        BadUpgrade(
            name: "HTTP/1.0", request: upgradeRequest(requestLine: "GET /sub HTTP/1.0"), status: 400,
            code: "bad_request"),
        BadUpgrade(
            name: "absolute target", request: upgradeRequest(requestLine: "GET sub HTTP/1.1"), status: 400,
            code: "bad_request"),
        BadUpgrade(
            name: "bare LF line ends",
            request: Array(String(decoding: upgradeRequest(), as: UTF8.self).replacing("\r\n", with: "\n").utf8)
                + Array("\r\n\r\n".utf8),
            status: 400, code: "bad_request"),
        BadUpgrade(
            name: "folded header", request: upgradeRequest(extra: "X-A: 1\r\n  continued\r\n"), status: 400,
            code: "bad_request"),
        BadUpgrade(
            name: "space before colon", request: upgradeRequest(extra: "X-A : 1\r\n"), status: 400, code: "bad_request"),
        BadUpgrade(
            name: "head over 8 KiB",
            request: upgradeRequest(extra: "X-Pad: " + String(repeating: "a", count: 8200) + "\r\n"),
            status: 431, code: "headers_too_large"),
    ]

    /// Each bad request is refused with its status and the HTTP API's JSON error body.
    @Test(arguments: bad)
    func refused(_ bad: BadUpgrade) throws {
        guard case .refuse(let error) = handshake([bad.request]) else {
            return #expect(Bool(false), "\(bad.name) was not refused")
        }
        #expect(error.status == bad.status)
        #expect(error.code == bad.code)
        let response = HTTPResponse(error)
        let body = try JSONParser.parse(response.body)
        #expect(body["error"]?["code"]?.stringValue == bad.code)
        if bad.status == 426 {
            #expect(error.headers.contains { $0.0 == "Sec-WebSocket-Version" && $0.1 == "13" })
        }
        if bad.status == 405 {
            #expect(error.headers.contains { $0.0 == "Allow" && $0.1 == "GET" })
        }
    }

    /// A pushgw TCP frame sent to the WebSocket port is refused at once, without waiting for a blank line.
    @Test func binaryIsRefusedAtOnce() {
        guard case .refuse(let error) = handshake([Array(pushgwFrames.prefix(8))]) else {
            return #expect(Bool(false), "binary bytes not refused")
        }
        #expect(error.status == 400)
    }

    /// 8 KiB without a blank line is refused without more input.
    @Test func endlessHead() {
        let outcome = handshake([Array(("GET /sub HTTP/1.1\r\nX: " + String(repeating: "b", count: 8192)).utf8)])
        #expect(outcome == .refuse(.headTooLarge))
    }
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
