// A blocking WebSocket client (RFC 6455) for the gateway's WebSocket listener, written from the RFC: the
// upgrade request, the masking and the frame parsing are done here by hand, not with the gateway's codec.
import Foundation
import Testing

/// WebSocket opcodes (RFC 6455 §5.2).
enum WSOp {
    static let continuation: UInt8 = 0x0
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA
}

/// One frame from the server.
struct WSMessage: Sendable, CustomStringConvertible {
    let fin: Bool
    let opcode: UInt8
    let payload: [UInt8]

    /// The status code of a close frame.
    var closeCode: UInt16? {
        opcode == WSOp.close && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
    }

    var closeReason: String { String(decoding: payload.dropFirst(2), as: UTF8.self) }

    /// The pushgw frames a binary message holds; nil if it is not binary or not whole frames.
    var frames: [Frame]? { opcode == WSOp.binary ? splitBatch(payload) : nil }

    var description: String {
        if let frames { return "binary \(frames)" }
        if opcode == WSOp.close { return "close \(closeCode.map(String.init) ?? "-") \(closeReason.debugDescription)" }
        return "opcode \(opcode) fin \(fin) \(payload.count) bytes"
    }
}

/// A client frame by hand: FIN, RSV 0, opcode, the mask bit, the length in 7, 7+16 or 7+64 bits, the key, the
/// masked payload. `masked: false` builds the frame a client must not send.
func wsFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
    let maskBit: UInt8 = masked ? 0x80 : 0
    if payload.count < 126 {
        out.append(maskBit | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        out += [maskBit | 126] + Wire.be16(UInt16(payload.count))
    } else {
        out += [maskBit | 127] + Wire.be32(0) + Wire.be32(UInt32(payload.count))
    }
    guard masked else { return out + payload }
    let key = (0..<4).map { _ in UInt8.random(in: 0...255) }
    out += key
    for (index, byte) in payload.enumerated() { out.append(byte ^ key[index % 4]) }
    return out
}

/// The RFC 6455 §1.3 sample key and its accept value.
let sampleWebSocketKey = "dGhlIHNhbXBsZSBub25jZQ=="
let sampleWebSocketAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/// The upgrade request a browser sends, with `headers` added (or replacing those of the same name).
func upgradeRequest(path: String = "/sub", method: String = "GET", headers: [(String, String?)] = []) -> [UInt8] {
    var fields: [(String, String?)] = [
        ("Host", "127.0.0.1"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", sampleWebSocketKey), ("Sec-WebSocket-Version", "13"), ("Origin", "http://127.0.0.1"),
    ]
    for (name, value) in headers {
        if let index = fields.firstIndex(where: { $0.0.lowercased() == name.lowercased() }) {
            fields[index].1 = value
        } else {
            fields.append((name, value))
        }
    }
    var text = "\(method) \(path) HTTP/1.1\r\n"
    for case (let name, let value?) in fields { text += "\(name): \(value)\r\n" }
    return Array((text + "\r\n").utf8)
}

/// A WebSocket connection to the gateway, upgraded.
final class WebSocketClient: FrameConversation, @unchecked Sendable {
    let http: HTTPConnection
    var socket: TestSocket { http.socket }
    static let defaultTimeout: Double = 5

    enum ReadResult: Sendable {
        case message(WSMessage)
        case closed
        case timedOut
    }

    private init(http: HTTPConnection) {
        self.http = http
    }

    /// Connects to the gateway's WebSocket port and upgrades; throws unless the answer is a proper 101.
    static func connect(_ gateway: GatewayProcess) async throws -> WebSocketClient {
        guard let port = gateway.webSocketPort else { throw TestError("gateway started without a WebSocket port") }
        return try await upgrade(try await offload { try HTTPConnection(port: port) })
    }

    /// Upgrades `http` (a connection to a WebSocket listener, plain or TLS) to a WebSocket.
    static func upgrade(_ http: HTTPConnection) async throws -> WebSocketClient {
        let response = try await http.roundTrip(upgradeRequest())
        guard response.status == 101, response.header("upgrade")?.lowercased() == "websocket",
            response.header("connection")?.lowercased() == "upgrade",
            response.header("sec-websocket-accept") == sampleWebSocketAccept, response.body.isEmpty
        else {
            throw TestError("upgrade refused: \(response) \(response.headers)")
        }
        return WebSocketClient(http: http)
    }

    func close() { socket.close() }

    // MARK: sending

    func sendRaw(_ bytes: [UInt8]) throws { try socket.sendAll(bytes) }

    func sendFrame(opcode: UInt8, payload: [UInt8] = [], fin: Bool = true, masked: Bool = true) throws {
        try sendRaw(wsFrame(opcode: opcode, payload: payload, fin: fin, masked: masked))
    }

    /// One pushgw frame in one binary message.
    func send(op: UInt32, seq: UInt32 = 0, body: [UInt8] = []) throws {
        try sendFrame(opcode: WSOp.binary, payload: Wire.frame(op: op, seq: seq, body: body))
    }

    func send(op: UInt32, seq: UInt32 = 0, text: String) throws {
        try send(op: op, seq: seq, body: Array(text.utf8))
    }

    // MARK: receiving

    /// Reads one frame from the server. Throws on a masked frame, reserved bits, a reserved opcode or a
    /// fragmented message (the gateway never fragments), and on a connection closed in the middle of a frame.
    func readSync(timeout: Double = defaultTimeout) throws -> ReadResult {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let buffered = socket.inbound
            if buffered.count >= 2 {
                let first = buffered[0]
                let second = buffered[1]
                guard first & 0x70 == 0, second & 0x80 == 0 else {
                    throw TestError("server frame with reserved bits or a mask: \(buffered.prefix(2))")
                }
                guard first & 0x80 != 0 else { throw TestError("server sent a fragmented message") }
                var length = Int(second & 0x7F)
                var header = 2
                if length == 126, buffered.count >= 4 {
                    length = Int(Wire.readBE16(buffered, 2))
                    header = 4
                } else if length == 127, buffered.count >= 10 {
                    length = Int(Wire.readBE32(buffered, 2)) << 32 | Int(Wire.readBE32(buffered, 6))
                    header = 10
                }
                if length < 126 || header > 2, buffered.count >= header + length {
                    let bytes = socket.consume(header + length)
                    return .message(WSMessage(fin: true, opcode: first & 0x0F, payload: Array(bytes[header...])))
                }
            }
            switch try socket.fill(until: deadline) {
            case .data: continue
            case .timedOut: return .timedOut
            case .eof:
                if socket.inbound.isEmpty { return .closed }
                throw TestError("connection closed in the middle of a WebSocket frame (\(socket.inbound.count) bytes)")
            }
        }
    }

    func read(timeout: Double = defaultTimeout) async throws -> ReadResult {
        try await offload { try self.readSync(timeout: timeout) }
    }

    /// The next message, or nil when the server closed the connection; throws if nothing came within `timeout`.
    func readMessage(timeout: Double = defaultTimeout) async throws -> WSMessage? {
        switch try await read(timeout: timeout) {
        case .message(let message): return message
        case .closed: return nil
        case .timedOut: throw TestError("no WebSocket message within \(timeout) s")
        }
    }

    /// The pushgw frame of the next message, which must be a binary message holding exactly one frame; nil when
    /// the server closed the connection.
    func readFrame(timeout: Double = defaultTimeout) async throws -> Frame? {
        guard let message = try await readMessage(timeout: timeout) else { return nil }
        guard let frames = message.frames, frames.count == 1 else {
            throw TestError("expected one pushgw frame in a binary message, got \(message)")
        }
        return frames[0]
    }

    /// Reads messages until the server closes the TCP connection; returns them. Throws if it is not closed within
    /// `timeout` seconds.
    func readUntilClosed(timeout: Double = defaultTimeout) async throws -> [WSMessage] {
        let deadline = Date().addingTimeInterval(timeout)
        var messages: [WSMessage] = []
        while true {
            switch try await read(timeout: max(0.001, deadline.timeIntervalSinceNow)) {
            case .message(let message): messages.append(message)
            case .closed: return messages
            case .timedOut:
                throw TestError("connection not closed within \(timeout) s; messages meanwhile: \(messages)")
            }
        }
    }

    // MARK: conversations

    /// Sends AUTH (platform "web") and returns the AUTH_REPLY's JSON; throws unless the answer is one binary
    /// message holding an AUTH_REPLY with that seq.
    @discardableResult
    func auth(mid: MID?, key: String? = nil, roomID: String? = nil, accepts: [Int]? = nil, seq: UInt32 = 1) async throws
        -> [String: Any]
    {
        try send(op: Op.auth, seq: seq, text: authBody(mid: mid, key: key, roomID: roomID, accepts: accepts, platform: "web"))
        return try await authReply(seq: seq)
    }
}

extension WebSocketClient {
    func sendFrame(op: UInt32, seq: UInt32, body: [UInt8]) throws { try send(op: op, seq: seq, body: body) }
    func nextFrame() async throws -> Frame? { try await readFrame() }
}
