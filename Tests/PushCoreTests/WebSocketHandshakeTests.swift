// The WebSocket upgrade (RFC 6455 §4): accepted and refused requests, at every chunking.
import Testing

@testable import PushCore

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
