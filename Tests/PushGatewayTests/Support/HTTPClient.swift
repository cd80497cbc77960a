// A raw-socket HTTP/1.1 client: builds requests as bytes (so several can go out in one write, pipelined) and
// reads responses by parsing the status line, the headers and Content-Length (or chunked) bodies.
import Foundation

struct HTTPResponse: Sendable, CustomStringConvertible {
    let status: Int
    let reason: String
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    /// The first header named `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { jsonObject(body) }
    /// `error.code` of a JSON error body.
    var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (json?["error"] as? [String: Any])?["message"] as? String }

    var description: String { "HTTP \(status) \(reason) \(text.prefix(400).debugDescription)" }
}

enum HTTP {
    /// The bytes of one request. A body gets Content-Type: application/json (unless `contentType` says
    /// otherwise) and Content-Length.
    static func request(
        _ method: String, _ path: String, body: String? = nil, apiKey: String? = nil,
        headers: [(String, String)] = [], contentType: String? = "application/json"
    ) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let apiKey { head += "Authorization: Bearer \(apiKey)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let bodyBytes = body.map { Array($0.utf8) }
        if let bodyBytes {
            if let contentType { head += "Content-Type: \(contentType)\r\n" }
            head += "Content-Length: \(bodyBytes.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (bodyBytes ?? [])
    }
}

/// One keep-alive HTTP connection.
final class HTTPConnection: @unchecked Sendable {
    let socket: TestSocket
    static let defaultTimeout: Double = 5

    init(port: UInt16) throws {
        socket = try TestSocket(port: port, timeout: Self.defaultTimeout)
    }

    /// Reads responses from a socket the test set up itself.
    init(socket: TestSocket) { self.socket = socket }

    static func connect(_ gateway: GatewayProcess) async throws -> HTTPConnection {
        let port = gateway.httpPort
        return try await offload { try HTTPConnection(port: port) }
    }

    func close() { socket.close() }

    func sendRaw(_ bytes: [UInt8]) throws { try socket.sendAll(bytes) }

    /// Several requests in one write (pipelining).
    func send(_ requests: [[UInt8]]) throws { try sendRaw(requests.flatMap { $0 }) }

    /// Sends one request and reads its response.
    func roundTrip(_ request: [UInt8], timeout: Double = defaultTimeout) async throws -> HTTPResponse {
        try sendRaw(request)
        guard let response = try await readResponse(timeout: timeout) else {
            throw TestError("connection closed instead of a response")
        }
        return response
    }

    /// The next response, or nil if the server closed the connection before sending one; throws on timeout.
    func readResponse(timeout: Double = defaultTimeout) async throws -> HTTPResponse? {
        try await offload { try self.readResponseSync(timeout: timeout) }
    }

    /// Whether the server closes the connection within `timeout` without sending anything more.
    func expectClosed(timeout: Double = defaultTimeout) async throws -> Bool {
        try await offload { try self.expectClosed(timeoutSync: timeout) }
    }

    func expectClosed(timeoutSync timeout: Double) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            switch try socket.fill(until: deadline) {
            case .data: continue
            case .eof: return true
            case .timedOut: return false
            }
        }
    }

    private func need(_ count: Int, _ deadline: Date) throws {
        while socket.inbound.count < count {
            switch try socket.fill(until: deadline) {
            case .data: continue
            case .eof: throw TestError("connection closed in the middle of a response")
            case .timedOut: throw TestError("response incomplete after timeout")
            }
        }
    }

    /// Index of the first CRLF at or after `from` in the buffer, reading more as needed.
    private func lineEnd(from: Int, _ deadline: Date, allowEOF: Bool = false) throws -> Int? {
        var searchFrom = from
        while true {
            let buffer = socket.inbound
            if buffer.count >= 2, searchFrom < buffer.count - 1 {
                for i in searchFrom..<(buffer.count - 1) where buffer[i] == 13 && buffer[i + 1] == 10 { return i }
                searchFrom = buffer.count - 1
            }
            switch try socket.fill(until: deadline) {
            case .data: continue
            case .eof:
                if allowEOF && socket.inbound.isEmpty { return nil }
                throw TestError("connection closed in the middle of a response: \(String(decoding: socket.inbound, as: UTF8.self).debugDescription)")
            case .timedOut: throw TestError("no complete response line within the timeout")
            }
        }
    }

    private func takeLine(_ deadline: Date, allowEOF: Bool = false) throws -> String? {
        guard let end = try lineEnd(from: 0, deadline, allowEOF: allowEOF) else { return nil }
        let line = socket.consume(end + 2)
        return String(decoding: line.dropLast(2), as: UTF8.self)
    }

    func readResponseSync(timeout: Double) throws -> HTTPResponse? {
        let deadline = Date().addingTimeInterval(timeout)
        guard let statusLine = try takeLine(deadline, allowEOF: true) else { return nil }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw TestError("bad status line \(statusLine.debugDescription)")
        }
        let reason = parts.count > 2 ? String(parts[2]) : ""
        var headers: [(name: String, value: String)] = []
        while true {
            guard let line = try takeLine(deadline) else { break }
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw TestError("bad header line \(line.debugDescription)") }
            headers.append(
                (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name }?.value }
        var body: [UInt8] = []
        if (100..<200).contains(status) || status == 204 || status == 304 {
            // no body
        } else if header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                guard let sizeLine = try takeLine(deadline),
                    let size = Int(sizeLine.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16)
                else { throw TestError("bad chunk size line") }
                if size == 0 {
                    while let trailer = try takeLine(deadline), !trailer.isEmpty {}
                    break
                }
                try need(size + 2, deadline)
                body += socket.consume(size)
                _ = socket.consume(2)
            }
        } else if let lengthText = header("content-length") {
            guard let length = Int(lengthText) else { throw TestError("bad Content-Length \(lengthText)") }
            try need(length, deadline)
            body = socket.consume(length)
        } else {
            // Body delimited by the close.
            while true {
                switch try socket.fill(until: deadline) {
                case .data: continue
                case .eof:
                    body = socket.consume(socket.inbound.count)
                case .timedOut: throw TestError("response without length not closed within the timeout")
                }
                break
            }
        }
        return HTTPResponse(status: status, reason: reason, headers: headers, body: body)
    }
}

/// The JSON body of a POST /v1/push.
func pushBody(
    users: [String]? = nil, devices: [(user: String, key: String)]? = nil, all: Bool = false, topic: String? = nil,
    op: Int = 1000, payload: String? = "{}", payloadB64: String? = nil, store: Bool? = false, id: String? = nil
) -> String {
    var to: [String] = []
    if let users { to.append("\"users\":[\(users.map(jsonQuote).joined(separator: ","))]") }
    if let devices {
        let list = devices.map { "{\"user\":\(jsonQuote($0.user)),\"key\":\(jsonQuote($0.key))}" }
        to.append("\"devices\":[\(list.joined(separator: ","))]")
    }
    if all { to.append("\"all\":true") }
    if let topic { to.append("\"topic\":\(jsonQuote(topic))") }
    var fields = ["\"to\":{\(to.joined(separator: ","))}", "\"op\":\(op)"]
    if let payloadB64 { fields.append("\"payload_b64\":\(jsonQuote(payloadB64))") } else if let payload {
        fields.append("\"payload\":\(payload)")
    }
    if let store { fields.append("\"store\":\(store)") }
    if let id { fields.append("\"id\":\(jsonQuote(id))") }
    return "{" + fields.joined(separator: ",") + "}"
}
