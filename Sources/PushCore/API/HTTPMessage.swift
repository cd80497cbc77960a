/// One parsed HTTP/1.1 request, as the HTTP server hands it to the API.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path, without the query.
    public var path: String
    /// The raw query string after `?` (empty when none).
    public var query: String
    /// Header names lower-cased, in arrival order.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Whether the connection stays open after this request (HTTP/1.1 default, `Connection: close`, …).
    public var keepAlive: Bool

    public init(
        method: String, target: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
        keepAlive: Bool = true
    ) {
        self.method = method
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = target
            query = ""
        }
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// The first header named `name` (lower case).
    public func header(_ name: String) -> String? {
        headers.first(where: { $0.name == name })?.value
    }

    /// Every value of query parameter `name`, repeated (`keys=a&keys=b`) or comma-separated (`keys=a,b`),
    /// percent-decoded, empty ones dropped.
    public func queryValues(_ name: String) -> [String] {
        var values: [String] = []
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, PercentDecoding.decode(parts[0]) == name else { continue }
            for item in parts[1].split(separator: ",") {
                if let value = PercentDecoding.decode(item), !value.isEmpty { values.append(value) }
            }
        }
        return values
    }

    /// Whether every name and value of the query percent-decodes (a `%` followed by two hex digits, UTF-8 after
    /// decoding). A request whose query does not is answered 400, rather than read as if the parameter were
    /// absent.
    public var queryIsWellFormed: Bool {
        query.split(separator: "&").allSatisfy { pair in
            pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).allSatisfy {
                PercentDecoding.decode($0) != nil
            }
        }
    }

    /// The first query parameter named `name`, percent-decoded.
    public func queryParameter(_ name: String) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if let key = PercentDecoding.decode(parts[0]), key == name {
                return parts.count > 1 ? PercentDecoding.decode(parts[1]) : ""
            }
        }
        return nil
    }
}

/// One HTTP response: a status, extra headers and a JSON body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var contentType: String

    public init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8], contentType: String = "application/json") {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }

    /// A 200 with a JSON body written by `build`.
    public static func json(status: Int = 200, _ build: (inout JSONWriter) -> Void) -> HTTPResponse {
        var writer = JSONWriter()
        build(&writer)
        return HTTPResponse(status: status, body: writer.bytes)
    }

    public init(_ error: APIError) {
        self.init(status: error.status, headers: error.headers, body: error.body)
    }

    /// Appends the response's wire form; `close` adds `Connection: close`.
    public func encode(into buffer: inout [UInt8], close: Bool) {
        // Bytes appended piece by piece: one per API answer, and string interpolation of the numbers was a
        // visible part of a push's cost.
        buffer.append(contentsOf: "HTTP/1.1 ".utf8)
        buffer.appendDecimal(status)
        buffer.append(UInt8(ascii: " "))
        buffer.append(contentsOf: Self.reason(status).utf8)
        buffer.append(contentsOf: "\r\nContent-Type: ".utf8)
        buffer.append(contentsOf: contentType.utf8)
        buffer.append(contentsOf: "\r\nContent-Length: ".utf8)
        buffer.appendDecimal(body.count)
        buffer.append(contentsOf: "\r\n".utf8)
        if close { buffer.append(contentsOf: "Connection: close\r\n".utf8) }
        for (name, value) in headers {
            buffer.append(contentsOf: name.utf8)
            buffer.append(contentsOf: ": ".utf8)
            buffer.append(contentsOf: value.utf8)
            buffer.append(contentsOf: "\r\n".utf8)
        }
        buffer.append(contentsOf: "\r\n".utf8)
        buffer.append(contentsOf: body)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Payload Too Large"
        case 415: "Unsupported Media Type"
        case 426: "Upgrade Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

/// `%XX` decoding for paths and query strings (`+` is a space in queries only, so it is left alone here).
public enum PercentDecoding {
    public static func decode<S: StringProtocol>(_ text: S) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
