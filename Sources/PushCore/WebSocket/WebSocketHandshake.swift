/// The server side of the WebSocket opening handshake (RFC 6455 §4.2): collects the request head (request line
/// and headers, at most `maxHead` bytes), checks it strictly, and answers 101 Switching Protocols, or refuses
/// it with an HTTP error whose body is the HTTP API's JSON error. Parsed by hand: a GET with a handful of
/// headers needs no general HTTP parser, and nothing but this request is ever read as HTTP on the port.
public struct WebSocketHandshake: Sendable {
    /// Most bytes of request line and headers, the blank line included.
    public static let maxHead = 8192
    /// The GUID of RFC 6455 §1.3, appended to the client's key before hashing.
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// What to do after a read.
    public enum Outcome: Equatable, Sendable {
        /// The head is not complete yet.
        case needMore
        /// Send `response` (101), then read WebSocket frames, starting with `rest` (bytes the client sent right
        /// after the head).
        case upgrade(response: [UInt8], rest: [UInt8])
        /// Answer with this error (`HTTPResponse(error)`), then close.
        case refuse(APIError)
    }

    /// The head read so far.
    private var head: [UInt8] = []

    public init() {}

    /// Takes the next bytes of the connection; see `Outcome`.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        let scanned = head.count
        head.append(contentsOf: bytes)
        let end = Self.blankLine(in: head, from: max(0, scanned - 3))
        // A control byte means this is no HTTP request (a TCP client on the wrong port, say): refuse at once
        // rather than wait for the head to fill or time out.
        if let byte = head[scanned..<max(scanned, end ?? head.count)].first(where: Self.isControlByte) {
            return .refuse(.badRequest("not an HTTP request: control byte 0x\(String(byte, radix: 16)) in the head"))
        }
        guard let end else { return head.count >= Self.maxHead ? .refuse(.headTooLarge) : .needMore }
        guard end + 4 <= Self.maxHead else { return .refuse(.headTooLarge) }
        let rest = Array(head[(end + 4)...])
        defer { head = [] }
        switch Self.check(head[..<end]) {
        case .success(let accept): return .upgrade(response: Self.switchingProtocols(accept: accept), rest: rest)
        case .failure(let error): return .refuse(error)
        }
    }

    /// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)).
    public static func accept(key: String) -> String {
        Base64.encode(SHA1.digest(Array((key + guid).utf8)))
    }

    /// The 101 response that completes the handshake.
    public static func switchingProtocols(accept: String) -> [UInt8] {
        let head =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(accept)\r\n\r\n"
        return Array(head.utf8)
    }

    private static let crlfCRLF: [UInt8] = Array("\r\n\r\n".utf8)

    /// Where the first CRLF CRLF starts, searching from `from`.
    private static func blankLine(in bytes: [UInt8], from: Int) -> Int? {
        var index = from
        while index + 4 <= bytes.count {
            if bytes[index..<index + 4].elementsEqual(crlfCRLF) { return index }
            index += 1
        }
        return nil
    }

    // MARK: - The request

    /// Checks a request head (without its blank line); returns the `Sec-WebSocket-Accept` value.
    public static func check(_ head: ArraySlice<UInt8>) -> Result<String, APIError> {
        guard let lines = lines(head), let requestLine = lines.first else {
            return .failure(.badRequest("malformed request head: lines must end with CRLF and be UTF-8"))
        }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].hasPrefix("/") else {
            return .failure(.badRequest("malformed request line: expected GET /path HTTP/1.1"))
        }
        guard parts[0] == "GET" else { return .failure(.methodNotAllowed(String(parts[0]), allowed: ["GET"])) }
        guard parts[2] == "HTTP/1.1" else { return .failure(.badRequest("a WebSocket upgrade needs HTTP/1.1")) }

        var headers: [(name: String, value: Substring)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), case let name = line[..<colon], !name.isEmpty,
                name.utf8.allSatisfy(isTokenByte)
            else {
                return .failure(.badRequest("malformed header line"))
            }
            headers.append((name.lowercased(), trimmed(line[line.index(after: colon)...])))
        }
        func values(_ name: String) -> [Substring] { headers.filter { $0.name == name }.map(\.value) }
        func tokens(_ name: String) -> [String] {
            values(name).flatMap { $0.split(separator: ",") }.map { trimmed($0).lowercased() }
        }

        guard values("host").count == 1 else { return .failure(.badRequest("exactly one Host header is required")) }
        guard tokens("upgrade").contains("websocket") else {
            return .failure(.badRequest("not a WebSocket upgrade: Upgrade: websocket is missing"))
        }
        guard tokens("connection").contains("upgrade") else {
            return .failure(.badRequest("not a WebSocket upgrade: Connection: Upgrade is missing"))
        }
        guard values("sec-websocket-version") == ["13"] else { return .failure(.webSocketVersion) }
        let keys = values("sec-websocket-key")
        guard keys.count == 1, let key = keys.first, isValidKey(key) else {
            return .failure(.badRequest("Sec-WebSocket-Key must be the base64 of 16 bytes"))
        }
        return .success(accept(key: String(key)))
    }

    /// The head's lines as text; nil if a CR or LF stands alone or the text is not UTF-8.
    private static func lines(_ head: ArraySlice<UInt8>) -> [Substring]? {
        var lines: [Substring] = []
        var start = head.startIndex
        var index = head.startIndex
        while index <= head.endIndex {
            if index == head.endIndex || head[index] == 0x0D {
                guard index == head.endIndex || (index + 1 < head.endIndex && head[index + 1] == 0x0A),
                    let line = String(validating: head[start..<index], as: UTF8.self)
                else { return nil }
                lines.append(Substring(line))
                start = index + 2
                index = start
                continue
            }
            if head[index] == 0x0A { return nil }
            index += 1
        }
        return lines
    }

    /// A key is 16 random bytes in standard base64 with padding: 24 characters.
    private static func isValidKey(_ key: Substring) -> Bool {
        key.utf8.count == 24 && !key.contains("-") && !key.contains("_") && Base64.decode(String(key))?.count == 16
    }

    /// A byte no request head holds: a control character other than CR, LF and tab.
    private static func isControlByte(_ byte: UInt8) -> Bool {
        (byte < 0x20 && byte != 0x0D && byte != 0x0A && byte != 0x09) || byte == 0x7F
    }

    /// RFC 9110 `tchar`: the characters of a header name.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    /// Without the optional whitespace (spaces and tabs) around a header value or list item.
    private static func trimmed(_ text: Substring) -> Substring {
        var text = text
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}

extension APIError {
    /// 426: the client speaks a WebSocket version other than 13 (RFC 6455 §4.4 wants the version named).
    public static let webSocketVersion = Self(
        status: 426, code: "upgrade_required", message: "only WebSocket version 13 is served",
        headers: [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")])
    /// 431: the upgrade request's head is over `WebSocketHandshake.maxHead`.
    public static let headTooLarge = Self(
        status: 431, code: "headers_too_large", message: "request line and headers over 8 KiB")
}
