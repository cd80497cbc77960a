// Helpers of the goim compatibility tests: goim API requests and replies, goim's AUTH, room messages.
import Foundation
import Testing

/// A goim API request: `body` raw bytes sent as `curl -d` sends them (Content-Type
/// application/x-www-form-urlencoded).
func goimRequest(_ method: String, _ path: String, body: [UInt8]? = nil, apiKey: String? = nil) -> [UInt8] {
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
    if let apiKey { head += "Authorization: Bearer \(apiKey)\r\n" }
    if let body {
        head += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.count)\r\n"
    }
    return Array((head + "\r\n").utf8) + (body ?? [])
}

/// A goim reply: HTTP 200, `code` 0, `message` ""; returns `data` (nil when absent).
func expectGoimOK(
    _ response: HTTPResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) -> Any? {
    #expect(response.status == 200, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(number(response.json?["code"]) == 0, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(response.json?["message"] as? String == "", "\(what): \(response)", sourceLocation: sourceLocation)
    return response.json?["data"]
}

/// A goim error reply: HTTP `status`, body exactly `{"code":<code>,"message":"…"}` (goim's `errors(c, code, msg)`
/// in internal/logic/http/result.go), with no /v1 `error` envelope.
func expectGoimError(
    _ response: HTTPResponse, status: Int, code: Double = -400, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(response.status == status, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(response.header("content-type") == "application/json", "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(number(response.json?["code"]) == code, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect((response.json?["message"] as? String)?.isEmpty == false, "\(what): \(response)", sourceLocation: sourceLocation)
    #expect(response.json.map { Set($0.keys) } == ["code", "message"], "\(what): \(response)", sourceLocation: sourceLocation)
}

/// goim's AUTH body, field for field.
func goimAuthText(mid: Int, key: String, room: String?, accepts: [Int]) -> String {
    authBody(mid: .int(mid), key: key, roomID: room, accepts: accepts, platform: "web")
}

extension WireClient {
    /// AUTH with goim's body; checks AUTH_REPLY code 0 and the key echoed.
    func goimAuth(mid: Int, key: String, room: String?, accepts: [Int] = [1000, 1001, 1002]) async throws {
        try send(op: Op.auth, seq: 1, text: goimAuthText(mid: mid, key: key, room: room, accepts: accepts))
        let reply = try await readFrame()
        #expect(reply?.op == Op.authReply && reply?.seq == 1, "AUTH_REPLY for goim mid \(mid): \(String(describing: reply))")
        #expect(number(reply?.json?["code"]) == 0, "\(String(describing: reply))")
        #expect(reply?.json?["key"] as? String == key, "\(String(describing: reply))")
    }

    /// Reads `count` room messages on TCP: bare frames, as goim's comet writes a RAW's body (`Proto.WriteTCP`).
    /// Throws on a RAW wrapper or any other frame.
    func readRoomMessages(_ count: Int, timeout: Double = 5) async throws -> [Frame] {
        var frames: [Frame] = []
        while frames.count < count {
            guard let frame = try await readFrame(timeout: timeout) else {
                throw TestError("closed after \(frames.count) of \(count) room messages")
            }
            guard frame.op >= 1000, frame.seq == 0 else {
                throw TestError("expected a bare room message (op ≥ 1000, seq 0) on TCP, got \(frame) after \(frames.count)")
            }
            frames.append(frame)
        }
        return frames
    }
}

extension WebSocketClient {
    /// Reads RAW (op 9) frames, one per binary message, until `count` inner frames have come; returns the inner
    /// frames. Throws on any other frame.
    func readRoomBatches(_ count: Int, timeout: Double = 5) async throws -> (batches: Int, inner: [Frame]) {
        var inner: [Frame] = []
        var batches = 0
        while inner.count < count {
            guard let frame = try await readFrame(timeout: timeout) else {
                throw TestError("closed after \(inner.count) of \(count) room messages")
            }
            guard frame.op == Op.raw, frame.seq == 0 else {
                throw TestError("expected a RAW (op 9, seq 0) room batch, got \(frame) after \(inner.count) room messages")
            }
            guard let frames = splitBatch(frame.body), !frames.isEmpty else {
                throw TestError("RAW body is not whole frames: \(frame.body.prefix(64))")
            }
            batches += 1
            inner += frames
        }
        return (batches, inner)
    }
}
